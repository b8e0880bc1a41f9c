"""Orange and red alerts register hazards in the same transaction; one hazard per alert."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.support.alerts import open_alert, transition
from tests.support.inventories import crane_site, load


def _hazards(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT alert_id, level, state, found_by, site_id IS NOT NULL, work_id IS NOT NULL "
        "FROM hazards ORDER BY id"
    ).fetchall()


def test_yellow_alerts_stay_alerts_orange_registers_a_general_hazard(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        open_alert(conn, grade=2)
        assert _hazards(conn) == []
        orange = open_alert(conn, grade=3, metric="load_ratio")
        assert _hazards(conn) == [(orange, "general", "registered", "hazmon-engine", True, True)]
        events = conn.execute("SELECT action, actor, data->>'grade' FROM hazard_events").fetchall()
        assert events == [("register", "hazmon-engine", "3")]


def test_escalation_to_red_raises_the_same_hazard_to_major(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        alert = open_alert(conn, grade=2)
        transition(conn, alert, "escalate", 2, 3)
        transition(conn, alert, "escalate", 3, 4)
        transition(conn, alert, "deescalate", 4, 3)
        transition(conn, alert, "escalate", 3, 4)
        assert _hazards(conn) == [(alert, "major", "registered", "hazmon-engine", True, True)]
        actions = [r[0] for r in conn.execute("SELECT action FROM hazard_events ORDER BY id")]
        assert actions == ["register", "raise_level"]


def test_a_rolled_back_alert_leaves_no_hazard(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    with psycopg.connect(db_url) as conn:
        open_alert(conn, grade=4)
        conn.rollback()
        assert _hazards(conn) == []


def test_an_open_and_an_escalation_in_one_batch_give_one_hazard_raised(
    db_url: str, tmp_path: Path
) -> None:
    from hazmon.timeutil import now_us
    from hazmon.vocabulary import EngineAction, Grade
    from ingest.alerts import record
    from rules import Transition

    load(db_url, tmp_path, crane_site("S1"))
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT id FROM series WHERE metric = 'moment_ratio'").fetchone()
        assert row is not None

        def step(action: EngineAction, g_from: Grade, g_to: Grade) -> Transition:
            return Transition(
                row[0],
                "moment_ratio",
                action,
                g_from,
                g_to,
                now_us(),
                1.0,
                1.0,
                "中",
                "en",
            )

        record(
            conn,
            [step("open", Grade.NORMAL, Grade.ORANGE), step("escalate", Grade.ORANGE, Grade.RED)],
        )
        hazards = _hazards(conn)
        actions = [r[0] for r in conn.execute("SELECT action FROM hazard_events ORDER BY id")]
    assert [(h[1], h[2]) for h in hazards] == [("major", "registered")]
    assert actions == ["register", "raise_level"]
