"""Policy TOML files: the shipped one is the SPEC's defaults; bad ones are refused with the fix named."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import TerminalError
from ledger.policy import DEFAULT_POLICY, Policy
from spoc.policy_file import load_policy
from tests.conftest import ROOT


def test_the_documented_file_holds_every_number_at_its_spec_default() -> None:
    text = (ROOT / "policies" / "default.toml").read_text()
    assert load_policy(ROOT / "policies" / "default.toml") == DEFAULT_POLICY
    for key in Policy.__struct_fields__:
        unset = getattr(DEFAULT_POLICY, key) is None  # TOML has no null: shown commented out
        assert f"\n{'# ' if unset else ''}{key} = " in text, f"{key} is not documented in policies/default.toml"


def test_keys_left_out_keep_their_default(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("repeat_window_days = 14\nchurn_inactivity_days = 90\nlate_event_horizon_days = 30\n")
    policy = load_policy(path)
    assert (policy.repeat_window_days, policy.churn_inactivity_days, policy.late_event_horizon_days) == (14.0, 90.0, 30.0)
    assert policy.half_life_days == DEFAULT_POLICY.half_life_days


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("repeat_window = 14\n", "unknown field `repeat_window`"),
        ("half_life_days = 0\n", "half_life_days"),
        ("stability_margin = -1\n", "stability_margin"),
        ("late_event_horizon_days = 0\n", "late_event_horizon_days"),
        ('journey_window_hours = "72"\n', "journey_window_hours"),
        ("half_life_days = [\n", "not valid TOML"),
    ],
)
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(TerminalError, match=message):
        load_policy(path)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="cannot read the policy file"):
        load_policy(tmp_path / "nope.toml")
