"""Kafka plumbing shared by every driver: topics and their layout, reading partitions directly,
TLS/SASL settings, riding out outages, the marks in output headers, the embedded broker.

May import ``ledger.errors`` and ``processors.runtime``; never an engine (``batch``, ``live``)
or a driver.
"""
