"""The route of SPEC §9 and availability, in the pure core."""

from __future__ import annotations

from ledger.routing import Availability, Standing, route, score


def test_scores_are_rounded_half_up_against_the_best_available_affinity() -> None:
    assert [score(a, 8.0) for a in (8.0, 1.0, 0.04, 0.0)] == [100, 13, 1, 0]  # 12.5 → 13, 0.5 → 1
    assert score(1.0, 0.0) == 0


def test_candidates_follow_rule_2s_order_and_skip_the_owner_the_unavailable_and_the_unattached() -> None:
    standings = {
        "owner": Standing(5.0, 1.0), "b": Standing(2.0, 5.0), "a": Standing(2.0, 5.0), "c": Standing(2.0, 9.0),
        "away": Standing(9.0, 9.0), "none": Standing(0.0, 9.0), "bad": Standing(-0.5, 9.0), "d": Standing(1.0, 1.0),
    }
    answer = route("owner", standings, lambda e: e == "away", lambda e: {"owner": "billing"}.get(e or "", "x"))
    # Ties on affinity: the most recent touch first, then the id.
    assert [c.employee_id for c in answer.candidates] == ["c", "a", "b"]
    assert [c.score for c in answer.candidates] == [40, 40, 40]  # against the available owner's 5.0
    assert (answer.owner_available, answer.route_to, answer.department) == (True, "owner", "billing")


def test_without_an_available_owner_the_first_candidate_takes_it_else_nobody() -> None:
    standings = {"o": Standing(5.0, 1.0), "a": Standing(1.0, 2.0)}
    departments = {None: "sales", "o": "billing"}
    answer = route("o", standings, lambda e: e == "o", departments.get)
    assert (answer.route_to, answer.department, answer.candidates[0].score) == ("a", "sales", 100)  # a: never handled
    nobody = route(None, {}, lambda e: False, lambda e: None)
    assert (nobody.owner, nobody.owner_available, nobody.route_to, nobody.department) == (None, False, None, None)


def test_an_absence_lasts_until_its_end_or_the_return() -> None:
    availability = Availability()
    availability.away("e", 10.0, 20.0)
    availability.away("e", 30.0, None)
    assert [availability.is_away("e", t) for t in (9.9, 10.0, 19.9, 20.0, 30.0, 1e9)] == [False, True, True, False, True, True]
    availability.returned("e", 40.0)
    assert [availability.is_away("e", t) for t in (35.0, 40.0)] == [True, False]
    availability.returned("e", 25.0)  # back while not away: changes nothing
    assert availability.is_away("e", 15.0) and not availability.is_away("x", 15.0)
