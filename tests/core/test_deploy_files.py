"""Deployment files checked without a container engine: compose, Dockerfile, Grafana, Mosquitto."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import yaml

from hazmon.cli import build_parser
from hazmon.settings import Settings
from tests.support.common import REPO, free_port, wait_until

COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_commands_are_real_hazmon_commands_and_settings() -> None:
    parser = build_parser()
    known_settings = {f"HAZMON_{name.upper()}" for name in Settings.model_fields}
    built = [s for s in COMPOSE["services"].values() if "build" in s]
    assert {tuple(s["command"][:1]) for s in built} >= {("migrate",), ("ingest",), ("api",)}
    for service in built:
        parser.parse_args(service["command"])  # exits (fails the test) on an unknown command
        assert set(service["environment"]) <= known_settings


def test_compose_mounts_exist_and_dockerfile_copies_every_package() -> None:
    for service in COMPOSE["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"compose mounts missing {source}"
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, flags=re.M))
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    packages = set(re.findall(r'"(\w+)\*"', pyproject))
    assert packages <= copied


def test_grafana_dashboard_queries_run_on_the_schema(db_url: str) -> None:
    dashboard = json.loads((REPO / "dashboards/json/overview.json").read_text(encoding="utf-8"))
    datasource = yaml.safe_load(
        (REPO / "dashboards/provisioning/datasources/timescaledb.yaml").read_text(encoding="utf-8")
    )
    uid = datasource["datasources"][0]["uid"]
    with psycopg.connect(db_url) as conn:
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid
            for target in panel["targets"]:
                query = (
                    target["rawSql"]
                    .replace("$__interval", "'1 minute'::interval")
                    .replace("$__timeFilter(r.time)", "r.time > now() - interval '1 hour'")
                )
                conn.execute(query).fetchall()


def test_mosquitto_starts_with_hazmons_broker_limits() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        limits = (REPO / "deploy/mosquitto/hazmon.conf").read_text(encoding="utf-8")
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\n{limits}", encoding="utf-8"
        )
        with subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
        ) as broker:
            try:

                def listening() -> bool:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                        return True
                    except OSError:
                        return broker.poll() is not None

                assert wait_until(listening, 5)
                assert broker.poll() is None, "mosquitto refused deploy/mosquitto/hazmon.conf"
            finally:
                broker.terminate()
                broker.communicate(timeout=5)
