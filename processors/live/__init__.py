"""``spoc worker``: the faust app that keeps the ledger live, and the engine it drives.

``app`` is the faust app (consumer group, owners table, web pages); ``engine`` queues
each partition's batches and makes their effects durable in order; ``partition`` is
one input partition's state and the effects it still owes; ``outputs`` encodes the
messages the worker publishes; ``metrics`` its Prometheus metrics.
May import ``ledger``, ``projections``, ``schemas``, ``processors.kafka``,
``processors.runtime`` and ``processors.patches``; never ``processors.batch``.
"""
