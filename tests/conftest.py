"""Shared fixtures: real servers, started per session when the environment has none."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL: $SPOC_TEST_POSTGRES_URL, or a throwaway one from scripts/test-postgres."""
    url = os.environ.get("SPOC_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        pytest.skip("no PostgreSQL server: set SPOC_TEST_POSTGRES_URL or `apt-get install postgresql` (CI does)")
    script = ROOT / "scripts" / "test-postgres"
    exports = subprocess.run([str(script), "start"], capture_output=True, text=True, check=True).stdout
    env = dict(item.split("=", 1) for item in exports.removeprefix("export ").split())
    try:
        yield env["SPOC_TEST_POSTGRES_URL"]
    finally:
        subprocess.run([str(script), "stop"], env={**os.environ, **env}, check=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the test server."""
    import psycopg

    name = f"spoc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka-protocol broker: $SPOC_TEST_BOOTSTRAP, or the embedded one on a free loopback port."""
    external = os.environ.get("SPOC_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    from processors.embedded_broker import EmbeddedBroker
    from spoc.worker_process import free_port

    with EmbeddedBroker(free_port()) as broker:
        yield broker.bootstrap


@pytest.fixture
def pipeline_bootstrap() -> Iterator[str]:
    """A broker with none of the pipeline's topics yet: a fresh embedded one, or the external one cleared."""
    external = os.environ.get("SPOC_TEST_BOOTSTRAP")
    if external:
        import asyncio

        from tests.live import delete_pipeline_topics

        asyncio.run(delete_pipeline_topics(external))
        yield external
        return
    from processors.embedded_broker import EmbeddedBroker
    from spoc.worker_process import free_port

    with EmbeddedBroker(free_port()) as broker:
        yield broker.bootstrap
