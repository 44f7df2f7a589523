"""The relationship ledger: SPEC §3–§6 as a pure core, and its event-sourced store."""

from ledger.core import LedgerCore
from ledger.errors import LedgerError, SpocError, TerminalError, TransientError
from ledger.policy import DEFAULT_POLICY, Policy
from ledger.records import ControlFact, Erasure, LedgerRecord, Position, TouchFact
from ledger.relationship import Relationship

__all__ = [
    "DEFAULT_POLICY",
    "ControlFact",
    "Erasure",
    "LedgerCore",
    "LedgerError",
    "LedgerRecord",
    "Policy",
    "Position",
    "Relationship",
    "SpocError",
    "TerminalError",
    "TouchFact",
    "TransientError",
]
