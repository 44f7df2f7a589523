"""Importers: real service-desk logs as SPOC input events (JSONL), so the product can be run on them."""
