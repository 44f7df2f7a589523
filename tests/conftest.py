"""Shared fixtures: real servers, started per session when the environment has none."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.patches.aiokafka_metadata_backoff import install_metadata_backoff

ROOT = Path(__file__).resolve().parent.parent

# The test process drives Kafka clients in-process, as the `spoc` commands do: the same patch.
install_metadata_backoff()


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
def apache_kafka() -> Iterator[dict[str, str] | None]:
    """With SPOC_TEST_BROKER=apache: what scripts/kafka-broker exports (bootstrap, SASL_SSL listener); else None."""
    if os.environ.get("SPOC_TEST_BOOTSTRAP") or os.environ.get("SPOC_TEST_BROKER", "embedded") != "apache":
        yield None
        return
    missing = [tool for tool in ("java", "mvn", "openssl") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SPOC_TEST_BROKER=apache needs {' and '.join(missing)} (apt-get install openjdk-17-jre-headless maven openssl)")
    script = ROOT / "scripts" / "kafka-broker"
    exports = subprocess.run([str(script), "start"], capture_output=True, text=True, check=True).stdout
    env = dict(item.split("=", 1) for item in exports.strip().removeprefix("export ").split())
    try:
        yield env
    finally:
        subprocess.run([str(script), "stop"], env={**os.environ, **env}, check=True)


@pytest.fixture(scope="session")
def external_bootstrap(apache_kafka: dict[str, str] | None) -> str | None:
    """$SPOC_TEST_BOOTSTRAP; or, with SPOC_TEST_BROKER=apache, an Apache Kafka from scripts/kafka-broker; else None."""
    return os.environ.get("SPOC_TEST_BOOTSTRAP") or (apache_kafka or {}).get("SPOC_TEST_BOOTSTRAP")


@pytest.fixture(scope="session")
def secure_kafka(apache_kafka: dict[str, str] | None) -> dict[str, str]:
    """The SASL_SSL listener of the test's Apache Kafka: $SPOC_TEST_SECURE_BOOTSTRAP and friends, or the script's."""
    names = ("SPOC_TEST_SECURE_BOOTSTRAP", "SPOC_TEST_KAFKA_CA", "SPOC_TEST_KAFKA_USER", "SPOC_TEST_KAFKA_PASSWORD")
    given = {name: os.environ[name] for name in names if name in os.environ}
    found = given if len(given) == len(names) else {name: (apache_kafka or {}).get(name, "") for name in names}
    if not all(found.values()):
        pytest.skip("no SASL_SSL broker: `make test-apache` starts one (scripts/kafka-broker)")
    return found


@pytest.fixture(scope="session")
def kafka_bootstrap(external_bootstrap: str | None) -> Iterator[str]:
    """A Kafka-protocol broker: the external one (see above), or the embedded one on a free loopback port."""
    if external_bootstrap:
        yield external_bootstrap
        return
    from processors.kafka.embedded_broker import EmbeddedBroker
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
    from processors.kafka.embedded_broker import EmbeddedBroker
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
