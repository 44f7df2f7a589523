"""The ledger's exceptions: one root, split into terminal and transient.

    SpocError
    ├── TerminalError   retrying will not help; the message says what to change
    │   └── LedgerError (a ledger store that is misconfigured or holds another history)
    └── TransientError  an outage; retrying later can succeed
"""


class SpocError(Exception):
    """Base of every error this project raises on purpose."""


class TerminalError(SpocError):
    """Fix the input or the configuration; retrying the same thing fails the same way."""


class TransientError(SpocError):
    """A dependency was unavailable; the same operation may succeed later."""


class LedgerError(TerminalError):
    """The ledger store cannot be used as asked."""
