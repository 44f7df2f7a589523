"""Drivers of the ledger core: batch replay (and, later, the live faust worker)."""
