"""Policy TOML files: the shipped one is the SPEC's defaults; bad ones are refused with the fix named;
a ledger store holds to the policy its decisions were made under."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.errors import TerminalError
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.store import LedgerStore
from processors.batch.replay import replay
from spoc.policy_file import load_policy
from tests.conftest import ROOT
from tests.integration.test_replay import STORY
from tests.replaying import write_jsonl


def test_the_documented_file_holds_every_number_at_its_spec_default(tmp_path: Path) -> None:
    printed = subprocess.run([sys.executable, "-m", "spoc", "policy"], check=True, capture_output=True, text=True)
    text = printed.stdout
    assert text == (ROOT / "spoc" / "default-policy.toml").read_text()
    (tmp_path / "default.toml").write_text(text)
    assert load_policy(tmp_path / "default.toml") == DEFAULT_POLICY
    for key in Policy.__struct_fields__:
        unset = getattr(DEFAULT_POLICY, key) is None  # TOML has no null: shown commented out
        assert f"\n{'# ' if unset else ''}{key} = " in text, f"{key} is not documented in the default policy file"


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


def _stored_events(ledger: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(ledger) as con:
        return con.execute("SELECT topic, state FROM stored_events ORDER BY rowid").fetchall()


def test_a_ledger_store_holds_to_the_policy_of_its_decisions(tmp_path: Path) -> None:
    """Decisions made under two policies could be explained by neither: replay refuses to mix them."""
    story = write_jsonl(tmp_path / "story.jsonl", STORY)
    ledger = tmp_path / "shared.ledger.sqlite"
    replay([str(story)], tmp_path / "first.duckdb", f"sqlite:///{ledger}")
    before = _stored_events(ledger)
    assert before[0][0] == "ledger.store:PolicyRecord.Recorded"
    # The same policy again (the same file re-run, or another --db): nothing new, no complaint.
    assert replay([str(story)], tmp_path / "again.duckdb", f"sqlite:///{ledger}").ledger_events_written == 0
    other = Policy(repeat_window_days=2.0, late_event_horizon_days=30.0)
    with pytest.raises(TerminalError, match=(
        r"shared\.ledger\.sqlite holds decisions made under another policy "
        r"\(repeat_window_days 7\.0 → 2\.0, late_event_horizon_days None → 30\.0\); replay into a new ledger store"
    )):
        replay([str(story)], tmp_path / "what-if.duckdb", f"sqlite:///{ledger}", policy=other)
    assert _stored_events(ledger) == before


def _worker(ledger_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    # Port 9 (discard) has no broker: a worker that gets past its checks fails on the broker instead.
    command = [sys.executable, "-m", "spoc", "worker", "--bootstrap", "127.0.0.1:9", "--ledger", ledger_url, *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_worker_will_not_decide_under_another_policy_than_its_ledger_store(tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path}/ledger.sqlite"
    store = LedgerStore(ledger_url)
    store.refuse_another_policy(DEFAULT_POLICY, "unused")
    store.close()
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("repeat_window_days = 2\n")

    refused = _worker(ledger_url, "--policy", str(policy_file))
    assert refused.returncode == 2
    assert "holds decisions made under another policy (repeat_window_days 7.0 → 2.0)" in refused.stderr
    assert "start the worker with the --policy it was started with before" in refused.stderr
    assert "127.0.0.1:9" not in refused.stderr  # refused before the broker was tried

    # With the store's own policy the worker gets as far as the broker.
    unreachable = _worker(ledger_url, "--policy", str(ROOT / "spoc" / "default-policy.toml"))
    assert unreachable.returncode == 2 and "127.0.0.1:9" in unreachable.stderr
    assert "another policy" not in unreachable.stderr
