"""Drivers of the ledger core: batch replay, the live faust worker, the DuckDB sink, the notifier.

Importing this package makes every aiokafka client in the process back off after a
failed metadata update and report outages in a few log lines (see ``kafka_outage``).
"""

from processors.kafka_outage import install_metadata_backoff

install_metadata_backoff()
