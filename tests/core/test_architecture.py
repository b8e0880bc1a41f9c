"""The package dependencies are contracts (pyproject.toml, [tool.importlinter]): the repository
keeps them, and a forbidden edge breaks them (shown on a copy of the packages with such edges)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.common import REPO

PACKAGES = ("hazmon", "ingest", "rules", "registry", "api", "notify", "simulators")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_repository_keeps_every_dependency_contract() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


def test_each_forbidden_edge_breaks_its_contract(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    edges = {
        "hazmon/timeutil.py": "import ingest.service",  # the core importing a part
        "rules/measures_psycopg.py": "import psycopg",  # the rules doing I/O
        "rules/measures_paho.py": "import paho.mqtt.client",
        "api/routes/ingest_reach.py": "import ingest",  # the API reaching into ingest
        "notify/private_rules.py": "import rules.profiles",  # past the rules' public surface
    }
    for path, line in edges.items():
        target = tmp_path / path
        target.write_text(target.read_text() + f"\n{line}\n" if target.exists() else f"{line}\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    report = done.stdout
    for contract in (
        "The core imports no part (only its CLI, which starts them all) BROKEN",
        "The rules are pure: no database, broker, HTTP or other part BROKEN",
        "The services are independent of each other (api, ingest, notify, simulators) BROKEN",
        "Other parts use the rules' public surface only BROKEN",
    ):
        assert contract in report, report
    for importer, imported in (
        ("hazmon.timeutil", "ingest"),
        ("rules.measures_psycopg", "psycopg"),
        ("rules.measures_paho", "paho"),
        ("api.routes.ingest_reach", "ingest"),
        ("notify.private_rules", "rules.profiles"),
    ):
        assert f"{importer} -> {imported}" in report, (importer, report)
