"""Shared fixtures: real servers, started per session when the environment has none."""

from __future__ import annotations

import os
import shutil
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
def external_bootstrap() -> Iterator[str | None]:
    """$SPOC_TEST_BOOTSTRAP; or, with SPOC_TEST_BROKER=apache, an Apache Kafka from scripts/kafka-broker; else None."""
    given = os.environ.get("SPOC_TEST_BOOTSTRAP")
    if given or os.environ.get("SPOC_TEST_BROKER", "embedded") != "apache":
        yield given
        return
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SPOC_TEST_BROKER=apache needs {' and '.join(missing)} (apt-get install openjdk-17-jre-headless maven)")
    script = ROOT / "scripts" / "kafka-broker"
    exports = subprocess.run([str(script), "start"], capture_output=True, text=True, check=True).stdout
    env = dict(item.split("=", 1) for item in exports.strip().removeprefix("export ").split())
    try:
        yield env["SPOC_TEST_BOOTSTRAP"]
    finally:
        subprocess.run([str(script), "stop"], env={**os.environ, **env}, check=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(external_bootstrap: str | None) -> Iterator[str]:
    """A Kafka-protocol broker: the external one (see above), or the embedded one on a free loopback port."""
    if external_bootstrap:
        yield external_bootstrap
        return
    from processors.embedded_broker import EmbeddedBroker
    from spoc.worker_process import free_port

    with EmbeddedBroker(free_port()) as broker:
        yield broker.bootstrap


@pytest.fixture
def pipeline_bootstrap(external_bootstrap: str | None) -> Iterator[str]:
    """A broker with none of the pipeline's topics yet: a fresh embedded one, or the external one cleared."""
    if external_bootstrap:
        import asyncio

        from tests.live import delete_pipeline_topics

        asyncio.run(delete_pipeline_topics(external_bootstrap))
        yield external_bootstrap
        return
    from processors.embedded_broker import EmbeddedBroker
    from spoc.worker_process import free_port

    with EmbeddedBroker(free_port()) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium for the HTML report test (CI installs it; SPOC_TEST_REQUIRE_BROWSER=1 insists)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "the HTML report test needs Chromium: apt-get install chromium"
        if os.environ.get("SPOC_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
