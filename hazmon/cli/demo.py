"""`hazmon demo`: the whole path on the local services, with alerts printed as they open."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from hazmon.auth import create_token, grant
from hazmon.cli.supervisor import Supervisor
from hazmon.db import connect
from hazmon.migrate import migrate
from hazmon.settings import Settings
from hazmon.vocabulary import ACTION_LABELS, Grade


def run_demo(settings: Settings, *, speedup: float, linger_s: float) -> int:
    """Migrate, load the demo inventory, run ingest + API + the crane simulator, print alerts."""
    from registry import import_inventory, load_inventory
    from simulators import CraneSpec, GatewayPublisher, crane_lifts, publish_series, wall_top_drift

    migrate(settings.database_url)
    inventory_file = resources.files("hazmon") / "demo_inventory.yaml"
    with resources.as_file(inventory_file) as path, connect(settings.database_url) as conn:
        import_inventory(conn, load_inventory(Path(path)))
        row = conn.execute("SELECT coalesce(max(id), 0) FROM alert_transitions").fetchone()
        last_id = int(row[0]) if row else 0
        # a one-day admin token, so the API printed below can be tried straight away
        demo_token = grant(name="demo", role="admin", expires_days=1, now=datetime.now(UTC))
        create_token(conn, demo_token)
    print(
        "演示：基坑监测点断网后补传 5 天缓存数据，墙顶位移雨后加速；随后 1号塔吊力矩超过 90% 与 100% 额定值\n"
        "demo: the pit's monitoring point flushes 5 days of buffered readings (the wall-top drift "
        "speeds up after rain); then crane TC1's moment passes 90 % and 100 % of rated"
    )
    print(
        f"接口 / API (Ctrl-C 结束 / to stop): curl -H 'Authorization: Bearer {demo_token.token}' "
        f"http://{settings.api_host}:{settings.api_port}/alerts"
    )

    supervisor = Supervisor({"ingest": ["ingest"], "api": ["api"], "notify": ["notify"]})
    supervisor.install_signal_handlers()
    runner = threading.Thread(target=supervisor.run, name="supervisor")
    runner.start()
    spec = CraneSpec(rated_load_t=8, rated_moment_tm=160)

    def simulate() -> None:
        time.sleep(2.0)  # let ingest subscribe first (its session would keep them anyway)
        backlog = list(wall_top_drift(int(time.time() * 1000)))
        with GatewayPublisher(
            settings.mqtt, settings.topic_root, "DEMO-WH-001", "PIT1-GNSS1"
        ) as gw:
            for day in range(0, len(backlog), 24):
                gw.publish_buffered(backlog[day : day + 24])
        with GatewayPublisher(settings.mqtt, settings.topic_root, "DEMO-WH-001", "TC1-M") as gw:
            publish_series(
                gw, (s.values(spec) for s in crane_lifts(spec)), period_s=1.0, speedup=speedup
            )

    simulator = threading.Thread(target=simulate, name="simulator", daemon=True)
    simulator.start()
    done_at: float | None = None
    try:
        while not supervisor.stop_event.is_set():
            last_id = _print_new_transitions(settings, last_id)
            if not simulator.is_alive():
                done_at = done_at or time.monotonic()
                if time.monotonic() - done_at > linger_s:
                    break
            supervisor.stop_event.wait(0.5)
    finally:
        supervisor.stop_event.set()
        runner.join()
    print("演示结束 / demo finished")
    return 0


def _print_new_transitions(settings: Settings, after_id: int) -> int:
    with connect(settings.database_url) as conn:
        rows = conn.execute(
            """SELECT t.id, t.action, t.grade_to, t.reading_at, t.message_zh, t.message_en,
                      s.code, d.code
               FROM alert_transitions t
               JOIN alerts a ON a.id = t.alert_id
               JOIN series se ON se.id = a.series_id
               JOIN devices d ON d.id = se.device_id
               JOIN sites s ON s.id = d.site_id
               WHERE t.id > %s ORDER BY t.id""",
            (after_id,),
        ).fetchall()
    for tid, action, grade, at, zh, en, site, device in rows:
        assert isinstance(at, datetime)
        print(
            f"[{at.astimezone():%m-%d %H:%M:%S}] {site}/{device} {_action(str(action))} "
            f"{_grade(int(grade))}: {zh} / {en}"
        )
        after_id = int(tid)
    return after_id


def _action(action: str) -> str:
    zh, en = ACTION_LABELS.get(action, (action, action))
    return f"{zh} {en}"


def _grade(grade: int) -> str:
    return f"{Grade(grade).colour_zh} {Grade(grade).code}" if 1 <= grade <= 4 else ""
