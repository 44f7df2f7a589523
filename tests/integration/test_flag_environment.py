"""Every flag of every command from a SPOC_* variable, named in --help; the command line wins; a bad value
is an error naming the variable, and only for a command that has the flag."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.workload import generate
from spoc.cli import build_parser
from spoc.flag_environment import OWN_VARIABLES, Invalid, apply_environment
from tests.replaying import run_replay


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("env") / "touchpoints.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in generate(600, 60, seed=2)))
    return run_replay(path.parent, [path])[0]


def _spoc(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SPOC_") or k.startswith("SPOC_TEST")}
    return subprocess.run([sys.executable, "-m", "spoc", *args], capture_output=True, text=True, timeout=120,
                          env={**environ, **variables})


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found: dict[str, argparse.ArgumentParser] = {}
    for name, sub in subparsers.choices.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        found.update({f"{name} {n}": s for n, s in nested[0].choices.items()} if nested else {name: sub})
    return found


def test_every_optional_flag_names_its_variable_in_help() -> None:
    parser = build_parser()
    apply_environment(parser, {})
    commands = _commands(parser)
    assert {"worker", "project", "notify", "replay", "sql", "import xes"} <= set(commands)
    for name, command in commands.items():
        for action in command._actions:
            if not action.option_strings or action.dest == "help":
                continue
            expected = "$SPOC_" if action.dest in OWN_VARIABLES else f"[env SPOC_{action.dest.upper()}]"
            assert expected in (action.help or ""), f"spoc {name} {action.option_strings[0]}"


def test_variables_give_defaults_and_the_command_line_wins(db: Path) -> None:
    query = "SELECT customer_id FROM touchpoints"
    two = _spoc("sql", query, SPOC_DB=str(db), SPOC_MAX_ROWS="2")
    assert two.returncode == 0, two.stderr
    assert "2 rows (more rows not shown" in two.stdout
    three = _spoc("sql", query, "--max-rows", "3", SPOC_DB=str(db), SPOC_MAX_ROWS="2")
    assert "3 rows (more rows not shown" in three.stdout
    as_csv = _spoc("sql", "SELECT 1 AS one", SPOC_DB=str(db), SPOC_CSV="yes")
    assert as_csv.stdout.splitlines() == ["one", "1"]


def test_a_bad_value_names_the_variable_only_where_the_flag_exists(db: Path) -> None:
    bad = _spoc("sql", "SELECT 1", SPOC_DB=str(db), SPOC_MAX_ROWS="many")
    assert bad.returncode == 2 and "SPOC_MAX_ROWS='many'" in bad.stderr and "Traceback" not in bad.stderr
    assert _spoc("report", SPOC_DB=str(db), SPOC_MAX_ROWS="many").returncode == 0  # report has no --max-rows
    flag = _spoc("sql", "SELECT 1", SPOC_DB=str(db), SPOC_CSV="maybe")
    assert flag.returncode == 2 and "SPOC_CSV='maybe': give 1 or 0" in flag.stderr
    choice = _spoc("notify", "--webhook", "http://127.0.0.1:9/", SPOC_TOPIC="spoc.nothing")
    assert choice.returncode == 2 and "SPOC_TOPIC='spoc.nothing': choose one of" in choice.stderr


def test_a_repeatable_flag_takes_several_values() -> None:
    parser = build_parser()
    apply_environment(parser, {"SPOC_WEBHOOK": "https://a.example/h https://b.example/h", "SPOC_PARTITIONS": "x"})
    args = parser.parse_args(["notify"])
    assert args.webhook == ["https://a.example/h", "https://b.example/h"]
    assert isinstance(parser.parse_args(["worker"]).partitions, Invalid)
