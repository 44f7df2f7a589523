"""Policy TOML files: the shipped default (every key documented) and reading one."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import msgspec

from ledger.errors import TerminalError
from ledger.policy import Policy


def default_policy_text() -> str:
    """The default policy file shipped in the package: the SPEC's numbers, each one explained."""
    return files("spoc").joinpath("default-policy.toml").read_text(encoding="utf-8")


def load_policy(path: str | Path) -> Policy:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TerminalError(f"cannot read the policy file {path}: {error.strerror}") from error
    try:
        return msgspec.toml.decode(data, type=Policy)
    except msgspec.ValidationError as error:
        raise TerminalError(f"policy file {path}: {error} (`spoc policy` prints every key and its meaning)") from error
    except msgspec.DecodeError as error:
        raise TerminalError(f"policy file {path} is not valid TOML: {error}") from error
