"""The Dockerfile and the compose files: every command they run is a valid `spoc` command line, the image
holds every package of the wheel, and hadolint finds nothing (no container engine runs here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from spoc.cli import build_parser
from tests.conftest import ROOT


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _packages() -> list[str]:
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(name.removesuffix("*") for name in include)


def test_every_spoc_service_runs_a_valid_command() -> None:
    compose = _compose()
    assert compose["include"] == ["docker-compose.kafka.yml"]
    services = compose["services"]
    spoc_services = {name: s for name, s in services.items() if s.get("image") == "spoc-ledger:latest"}
    assert set(spoc_services) == {"worker", "sink", "notifier", "fanout", "spoc"}
    parser = build_parser()
    for name, service in spoc_services.items():
        if "command" in service:
            command = [part.replace("${SPOC_WEBHOOK_URL:-", "").rstrip("}") for part in service["command"]]
            parser.parse_args(command)  # exits (a test failure) on an unknown command or flag
        assert service["environment"]["SPOC_KAFKA_BOOTSTRAP"] == "kafka:19092", name
    assert spoc_services["worker"]["environment"]["SPOC_LEDGER_URL"].startswith("postgresql://spoc@postgres:")
    assert "SPOC_HTTP_TOKEN" in spoc_services["worker"]["environment"]  # it listens beyond loopback
    kafka = yaml.safe_load((ROOT / "docker-compose.kafka.yml").read_text())["services"]["kafka"]["environment"]
    assert "INTERNAL://kafka:19092" in kafka["KAFKA_ADVERTISED_LISTENERS"]


def test_the_image_copies_every_package_and_only_what_it_needs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = sorted(line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "/src/" in line
                    and not line.startswith("COPY pyproject"))
    assert copied == _packages()
    admitted = {line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    assert set(_packages()) | {"pyproject.toml", "README.md", "requirements/image.txt"} == admitted
    assert "USER 10001:10001" in dockerfile and 'ENTRYPOINT ["spoc"]' in dockerfile
    lock = (ROOT / "requirements" / "image.txt").read_text()
    assert "\npsycopg==" in lock and "\ncalfkit-mesh==" not in lock and "\npytest==" not in lock


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (the lint extra installs it on x86-64 Linux)")
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
