"""The CLI as a user runs it: `hazmon run` stops cleanly; the README's commands from a fresh clone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hazmon.settings import Settings
from tests.support.common import REPO, free_port, wait_until


def _env(settings: Settings, api_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    env.update(
        HAZMON_DATABASE_URL=settings.database_url,
        HAZMON_MQTT_URL=settings.mqtt_url,
        HAZMON_TOPIC_ROOT=settings.topic_root,
        HAZMON_MQTT_CLIENT_ID=settings.mqtt_client_id,
        HAZMON_API_PORT=str(api_port),
    )
    return env


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_starts_ingest_and_api_and_stops_both_on_signal(settings: Settings, sig: int) -> None:
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "hazmon.cli", "run"],
        env=_env(settings, port),
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert wait_until(lambda: _healthy(port), 30), (
                "API of `hazmon run` never became healthy"
            )
            time.sleep(1.0)  # let ingest connect too
            proc.send_signal(sig)
            _, logs = proc.communicate(timeout=30)
            code = proc.returncode
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, logs
    assert '"ingest started"' in logs
    assert '"ingest stopped"' in logs
    assert logs.count('"service stopped"') == 4  # ingest, api, notify, sweep
    assert not _healthy(port)


@pytest.mark.slow
def test_readme_make_demo_works_from_a_fresh_clone(settings: Settings, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme
    assert "make test" in readme
    clone = tmp_path / "hazmon"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=60)
    result = subprocess.run(
        ["make", "demo"],
        cwd=clone,
        env=_env(settings, free_port()),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "新报警 opened" in out
    assert "红色 red" in out
    assert "黄色 yellow" in out
    assert "已恢复 resolved" in out
    assert "演示结束 / demo finished" in out
