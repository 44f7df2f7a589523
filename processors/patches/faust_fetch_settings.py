"""The worker's input consumer: a short fetch wait, and committed messages only.

faust 0.15 creates its aiokafka consumer with ``fetch_max_wait_ms`` fixed at 1500 ms,
the latency floor on the embedded broker (which holds a fetch for its whole wait), and
reads uncommitted messages unless its guarantee is ``exactly_once``; neither is a
setting.  Patched here: the private ``_fetch_max_wait_ms`` and ``_isolation_level`` of
the consumer that ``AIOKafkaConsumerThread._create_worker_consumer`` returns (aiokafka
0.14 reads both when the consumer starts), through the consumer's private
``_new_consumer_thread``; so the worker reads what a rebuild reads.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from processors.kafka.reading import FETCH_MAX_WAIT_MS, ISOLATION_LEVEL


class FetchTunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        consumer._isolation_level = ISOLATION_LEVEL
        return consumer


class FetchTunedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return FetchTunedConsumerThread(self, loop=self.loop, beacon=self.beacon)
