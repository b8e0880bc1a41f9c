"""Signed links: the token itself (hazmon/links.py, pure) and the routes that read it
(api/routes/links.py) — the view, the one-step acknowledgement as `link:<subscription name>`,
and the refusals: tampered 404, expired 403, a deleted subscription 403."""

from __future__ import annotations

import logging

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from hazmon.links import Link, LinkError, LinkSigner, read_link, sign_link
from hazmon.settings import Settings
from tests.support.common import wait_until
from tests.support.services import running_api
from tests.support.world import World

SECRET = "a-secret-of-at-least-thirty-two-chars"
NOW = 1_772_353_800.0


def test_a_token_names_one_subject_one_subscription_and_its_expiry() -> None:
    link = Link("alert", 17, 3, int(NOW) + 600)
    token = sign_link(SECRET, link)
    assert token.startswith("v1.a17.3.1772354400.")
    assert len(token) < 50  # short enough for a phone's URL
    assert read_link(SECRET, token, NOW) == link
    hazard = Link("hazard", 9, 3, int(NOW) + 600)
    assert read_link(SECRET, sign_link(SECRET, hazard), NOW) == hazard
    signer = LinkSigner(SECRET, "https://hazmon.example.cn/", 600)
    assert signer.url("alert", 17, 3, NOW) == f"https://hazmon.example.cn/links/{token}"


@pytest.mark.parametrize(
    "widen",
    [
        lambda t: t.replace("v1.a17.", "v1.a18."),  # another alert
        lambda t: t.replace("v1.a17.", "v1.h17."),  # a hazard with that id
        lambda t: t.replace(".3.", ".4."),  # another subscription
        lambda t: t.replace(".1772354400.", ".1872354400."),  # a later expiry
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the signature itself
    ],
)
def test_a_token_cannot_be_widened_without_the_secret(widen: object) -> None:
    token = sign_link(SECRET, Link("alert", 17, 3, int(NOW) + 600))
    assert callable(widen)
    with pytest.raises(LinkError) as caught:
        read_link(SECRET, widen(token), NOW)
    assert caught.value.problem == "forged"
    with pytest.raises(LinkError, match="signature"):
        read_link("another-secret-of-thirty-two-chars!", token, NOW)  # the secret rotated


def test_an_expired_token_is_told_apart_from_a_forged_one() -> None:
    token = sign_link(SECRET, Link("alert", 17, 3, int(NOW)))
    with pytest.raises(LinkError) as caught:
        read_link(SECRET, token, NOW)
    assert caught.value.problem == "expired"


@pytest.mark.parametrize(
    "token",
    ["", "v1", "v2.a17.3.1772354400.xxxxxxxxxxxxxxxxxxxxxx", "v1.a017.3.1.x", "x" * 97, "../etc"],
)
def test_what_is_not_a_token_is_malformed(token: str) -> None:
    with pytest.raises(LinkError) as caught:
        read_link(SECRET, token, NOW)
    assert caught.value.problem == "malformed"


def test_a_link_opens_its_alert_and_acknowledges_it_as_the_subscription(world: World) -> None:
    alert = world.ids["A"]["alert"]
    token = world.extra["link_alert"]
    with httpx.Client(base_url=world.base) as http:  # no API token
        view = http.get(f"/links/{token}")
        assert view.status_code == 200
        body = view.json()
        assert (body["scope"], body["subscription"], body["can_acknowledge"]) == (
            "alert",
            "ops",
            True,
        )
        assert body["alert"]["id"] == alert
        assert body["alert"]["grade_name"] == "red"
        assert body["alert"]["work_code"] == "TC1"
        assert body["hazard"] is None
        blank = http.post(f"/links/{token}/acknowledge", json={"note": " "})
        assert blank.status_code == 422
        done = http.post(f"/links/{token}/acknowledge", json={"note": "已到场，停止吊装"})
        assert done.status_code == 200, done.text
        acked = done.json()
        assert acked["alert"]["state"] == "acknowledged"
        assert acked["alert"]["acknowledged_by"] == "link:ops"
        assert acked["can_acknowledge"] is False
        assert acked["transitions"][0]["action"] == "acknowledge"
        again = http.post(f"/links/{token}/acknowledge", json={"note": "again"})
        assert again.json()["alert"]["ack_note"] == "已到场，停止吊装"
    with psycopg.connect(world.db_url) as conn:
        transitions = conn.execute(
            "SELECT action, actor FROM alert_transitions WHERE alert_id = %s", (alert,)
        ).fetchall()
        audit = conn.execute(
            "SELECT actor, action, subject_id FROM audit_log WHERE action = 'alert.acknowledge'"
        ).fetchall()
    assert transitions == [("acknowledge", "link:ops")]
    assert audit == [("link:ops", "alert.acknowledge", alert)]


def test_a_hazard_link_opens_the_hazard_and_only_that(world: World) -> None:
    with httpx.Client(base_url=world.base) as http:
        view = http.get(f"/links/{world.extra['link_hazard']}")
        assert view.status_code == 200
        body = view.json()
        assert body["scope"] == "hazard"
        assert body["hazard"]["id"] == world.ids["A"]["hazard_registered"]
        assert body["can_acknowledge"] is False
        refused = http.post(f"/links/{world.extra['link_hazard']}/acknowledge", json={"note": "x"})
        assert refused.status_code == 409


def test_tampered_expired_and_orphaned_links_are_refused(world: World) -> None:
    with httpx.Client(base_url=world.base) as http:
        forged = http.get(f"/links/{world.extra['link_forged']}")
        assert forged.status_code == 404  # not one of ours: as an unknown URL
        assert forged.json()["detail"] == "no such link"
        assert world.extra["link_forged"] not in forged.text  # nor echoed back
        expired = http.get(f"/links/{world.extra['link_expired']}")
        assert expired.status_code == 403  # genuine, but no longer allowed
        assert "expired" in expired.json()["detail"]
        with psycopg.connect(world.db_url, autocommit=True) as conn:
            conn.execute(
                "DELETE FROM webhook_subscriptions WHERE id = %s", (world.extra["webhook"],)
            )
        orphaned = http.post(f"/links/{world.extra['link_alert']}/acknowledge", json={"note": "x"})
        assert orphaned.status_code == 403
        assert "no longer exists" in orphaned.json()["detail"]
    with psycopg.connect(world.db_url) as conn:
        assert conn.execute("SELECT count(*) FROM alert_transitions").fetchone() == (0,)


def test_a_resolved_alert_cannot_be_acknowledged_through_its_link(world: World) -> None:
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE id = %s",
            (world.ids["A"]["alert"],),
        )
    with httpx.Client(base_url=world.base) as http:
        view = http.get(f"/links/{world.extra['link_alert']}").json()
        assert view["can_acknowledge"] is False
        refused = http.post(f"/links/{world.extra['link_alert']}/acknowledge", json={"note": "x"})
        assert refused.status_code == 409
        assert "resolved" in refused.json()["detail"]


def test_another_secret_or_none_makes_every_link_unknown(settings: Settings, world: World) -> None:
    rotated = settings.model_copy(update={"link_secret": SecretStr("rotated-" + "x" * 32)})
    with running_api(rotated) as base:
        assert httpx.get(f"{base}/links/{world.extra['link_alert']}").status_code == 404
    with running_api(settings) as unconfigured:  # no HAZMON_LINK_SECRET: no link is genuine
        refused = httpx.get(f"{unconfigured}/links/{world.extra['link_alert']}")
        assert refused.status_code == 404


def test_the_access_log_never_holds_a_link_token(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    token = world.extra["link_alert"]

    def access() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "hazmon.api.access"]

    with caplog.at_level(logging.INFO, logger="hazmon.api.access"):
        httpx.get(f"{world.base}/links/{token}")
        httpx.post(f"{world.base}/links/{world.extra['link_forged']}/acknowledge", json={})
        assert wait_until(lambda: len(access()) == 2, 5)
    for record in access():
        assert token not in str(record.__dict__)
        assert world.extra["link_forged"] not in str(record.__dict__)
        assert record.__dict__["path"].startswith("/links/{token}")
