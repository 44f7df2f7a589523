"""``spoc replay``: inputs through the ledger core into the DuckDB file and the ledger store, in one run.

``replay`` is the entry point; ``split`` spreads the customers over one process per
core and merges their files; ``shares`` says what each process reads (a partition
of the customers of files, or partitions of a topic); ``replay_pass`` runs one input
through the intake step in chunks; ``summary`` is what the run prints.
May import ``ledger``, ``projections``, ``schemas``, ``processors.kafka``,
``processors.runtime`` and ``processors.sources``; never ``processors.live``.
"""
