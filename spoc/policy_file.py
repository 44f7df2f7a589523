"""Read a policy TOML file (``policies/default.toml`` documents every key)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from ledger.errors import TerminalError
from ledger.policy import Policy


def load_policy(path: str | Path) -> Policy:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TerminalError(f"cannot read the policy file {path}: {error.strerror}") from error
    try:
        return msgspec.toml.decode(data, type=Policy)
    except msgspec.ValidationError as error:
        raise TerminalError(f"policy file {path}: {error} (policies/default.toml lists every key and its meaning)") from error
    except msgspec.DecodeError as error:
        raise TerminalError(f"policy file {path} is not valid TOML: {error}") from error
