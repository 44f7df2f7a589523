"""SPOC Ledger: a single point of contact for every customer, as data infrastructure."""

__version__ = "0.1.0"
