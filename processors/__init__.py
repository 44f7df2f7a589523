"""Drivers of the ledger core: batch replay, the live faust worker, the DuckDB sink, publishing, webhooks.

Sub-packages by concern, engines above plumbing:

- ``batch/``: ``spoc replay`` (files, stdin or a topic, split over processes).
- ``live/``: ``spoc worker``, the faust app and the engine that drives the core per partition.
- ``kafka/``: topics, reading partitions, security, outage handling, the embedded broker,
  the headers that mark output messages.
- ``runtime/``: the heap regime for long-lived state, child processes, logging.
- ``patches/``: the few changes to third-party internals, each applied by the entry points that need it.
- ``project`` (the DuckDB sink, ``spoc project``), ``publish`` (``spoc publish``), ``fanout`` (``spoc fanout``),
  ``sources`` (reading JSONL inputs) and ``webhooks/`` (``spoc notify``) stand alone.

Batch and live never import each other; plumbing imports neither (``.importlinter``).
Importing this package changes nothing in any library.
"""
