"""The command line as a user meets it first."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def test_spoc_version_names_the_installed_release() -> None:
    shown = subprocess.run([sys.executable, "-m", "spoc", "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == f"spoc {version('spoc-ledger')}"
