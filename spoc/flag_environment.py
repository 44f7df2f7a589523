"""Every command's flags from ``SPOC_*`` environment variables, for containers and service managers.

``--state-cache-mb 512`` may be given as ``SPOC_STATE_CACHE_MB=512``: the variable is the flag's
name in capitals with ``-`` as ``_``, after ``SPOC_``. A flag on the command line wins over the
variable. ``--bootstrap`` and ``--ledger`` keep their own variables (``SPOC_KAFKA_BOOTSTRAP``,
``SPOC_LEDGER_URL``), already named in their help. Each flag's help shows its variable and default.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ledger.errors import TerminalError

PREFIX = "SPOC_"
OWN_VARIABLES = {"bootstrap", "ledger"}
"""Flags whose help already names the variable they fall back to."""
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


class Invalid:
    """A variable's value its flag refuses: an error only if the command run has that flag.

    Not a ``str``: argparse would run the flag's type on a string default, and fail without naming
    the variable."""

    def __init__(self, message: str) -> None:
        self.message = message


def refuse_invalid(args: argparse.Namespace) -> None:
    """After parsing: the first invalid variable the command would have used, as an error."""
    for value in vars(args).values():
        if isinstance(value, Invalid):
            raise TerminalError(value.message)


def variable(action: argparse.Action) -> str:
    return PREFIX + action.dest.upper()


def apply_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Name the variable in each optional flag's help, and take defaults from the variables set."""
    for command in _commands(parser):
        for action in command._actions:
            if not action.option_strings or action.dest in ("help", "version") or action.dest in OWN_VARIABLES:
                continue
            name = variable(action)
            shown = "" if action.default in (None, False, []) or "default" in (action.help or "") else (
                f" (default: {action.default})")
            action.help = f"{action.help or ''}{shown} [env {name}]".strip()
            if name in environ:
                action.default = _value(action, name, environ[name])
                action.required = False


def _commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.extend(_commands(sub))
    return found


def _value(action: argparse.Action, name: str, text: str) -> Any:
    """The variable's text as the flag would have taken it, or why the flag would refuse it."""
    if isinstance(action, argparse._StoreTrueAction):
        if text.strip().lower() in _TRUE | _FALSE:
            return text.strip().lower() in _TRUE
        return Invalid(f"{name}={text!r}: give 1 or 0 (true/false, yes/no), or unset it")
    values = text.split() if isinstance(action, argparse._AppendAction) else [text]
    converted = []
    for each in values:
        try:
            value = action.type(each) if callable(action.type) else each
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            return Invalid(f"{name}={text!r}: {error or 'not a valid value'} (flag {action.option_strings[0]})")
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            return Invalid(f"{name}={text!r}: choose one of {choices} (flag {action.option_strings[0]})")
        converted.append(value)
    return converted if isinstance(action, argparse._AppendAction) else converted[0]
