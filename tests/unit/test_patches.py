"""The third-party internals that processors/patches/ replaces still have the shape the patches expect.

Each test reads the library as installed: a new aiokafka, faust or mode that renames or
reshapes what a patch relies on fails here, before it fails silently in production.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import faust.transport.consumer as faust_consumer
from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

from processors.patches import aiokafka_metadata_backoff, faust_direct_delivery, faust_fetch_settings


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_aiokafka_metadata_update_is_the_method_the_backoff_wraps() -> None:
    assert parameters(aiokafka_metadata_backoff._unpatched_metadata_update) == ["self", "cluster_metadata", "topics"]
    assert inspect.iscoroutinefunction(aiokafka_metadata_backoff._unpatched_metadata_update)
    # What the wrapper uses of the client.
    assert "self._retry_backoff" in inspect.getsource(AIOKafkaClient.__init__)
    assert parameters(AIOKafkaClient.force_metadata_update) == ["self"]  # called with no arguments


def test_the_backoff_is_installed_only_when_asked_and_replaces_aiokafkas_method() -> None:
    aiokafka_metadata_backoff.install_metadata_backoff()  # the test process installs it too (conftest)
    assert AIOKafkaClient._metadata_update is aiokafka_metadata_backoff._metadata_update_with_backoff
    assert parameters(aiokafka_metadata_backoff._metadata_update_with_backoff) == parameters(
        aiokafka_metadata_backoff._unpatched_metadata_update
    )


def test_faust_builds_its_aiokafka_consumer_where_the_fetch_patch_tunes_it() -> None:
    assert parameters(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer) == ["self", "transport"]
    assert parameters(faust_aiokafka.Consumer._new_consumer_thread) == ["self"]
    assert "AIOKafkaConsumerThread(self, loop=self.loop, beacon=self.beacon)" in inspect.getsource(
        faust_aiokafka.Consumer._new_consumer_thread
    )
    # aiokafka reads both private settings when the consumer starts, after faust created it.
    started = inspect.getsource(AIOKafkaConsumer.start)
    assert "self._fetch_max_wait_ms" in started and "self._isolation_level" in started
    assert issubclass(faust_fetch_settings.FetchTunedConsumerThread, faust_aiokafka.AIOKafkaConsumerThread)


def test_faust_drains_each_message_through_wait_first_with_the_flow_wait_second() -> None:
    drain = inspect.getsource(faust_consumer.Consumer._drain_messages)
    assert "self.wait_first(" in drain and "callback(message), self.suspend_flow.wait()" in drain
    assert parameters(Service.wait_first) == ["self", "coros", "timeout"]
    assert inspect.signature(Service.wait_first).parameters["timeout"].default is None
    assert issubclass(faust_direct_delivery.DirectDeliveryConsumer, faust_aiokafka.Consumer)
