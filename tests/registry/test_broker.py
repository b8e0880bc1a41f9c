"""Broker credentials and the broker files' text (the real-broker test is test_broker_acl.py)."""

from __future__ import annotations

import base64
import csv
import hashlib
from pathlib import Path

import psycopg
import pytest

from hazmon.settings import MqttEndpoint
from registry.broker import (
    BrokerConfigError,
    DeviceAccount,
    Listener,
    ServiceAccount,
    acl_file,
    emqx_acl_file,
    emqx_settings_file,
    ingest_accounts,
    ingest_env,
    mosquitto_hash,
    mosquitto_listener_file,
    password_file,
    read_password_hashes,
)
from tests.support.inventories import crane_site, load
from tests.support.world import World, hazmon

DEVICES = [
    DeviceAccount("A.TC1-M", "$7$h1", "A", "TC1-M"),
    DeviceAccount("B.PIT1", "$7$h2", "B", "PIT1"),
]
SERVICES = [ServiceAccount("hazmon-ingest", "$7$h0")]


def test_mosquitto_hash_is_pbkdf2_sha512_in_mosquitto_format() -> None:
    hashed = mosquitto_hash("s3cret", iterations=1000)
    _, seven, iterations, salt, digest = hashed.split("$")
    assert (seven, iterations) == ("7", "1000")
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", base64.b64decode(salt), 1000)
    assert base64.b64decode(digest) == expected
    assert mosquitto_hash("s3cret") != mosquitto_hash("s3cret")  # salted


def test_password_file_lists_services_then_devices() -> None:
    assert password_file(DEVICES, SERVICES).splitlines() == [
        "hazmon-ingest:$7$h0",
        "A.TC1-M:$7$h1",
        "B.PIT1:$7$h2",
    ]


def test_acls_grant_each_device_its_own_two_topics_and_nothing_to_read() -> None:
    mosquitto = acl_file(DEVICES, SERVICES, "hazmon/v1")
    blocks = [b.splitlines() for b in mosquitto.split("\n\n")[1:]]
    assert blocks == [
        ["user hazmon-ingest", "topic read hazmon/v1/#"],
        [
            "user A.TC1-M",
            "topic write hazmon/v1/A/TC1-M/telemetry",
            "topic write hazmon/v1/A/TC1-M/status",
        ],
        [
            "user B.PIT1",
            "topic write hazmon/v1/B/PIT1/telemetry",
            "topic write hazmon/v1/B/PIT1/status",
        ],
    ]
    emqx = emqx_acl_file(DEVICES, SERVICES, "hazmon/v1").splitlines()
    assert emqx[1] == '{allow, {username, "hazmon-ingest"}, subscribe, ["hazmon/v1/#"]}.'
    assert emqx[2] == (
        '{allow, {username, "A.TC1-M"}, publish, '
        '[{eq, "hazmon/v1/A/TC1-M/telemetry"}, {eq, "hazmon/v1/A/TC1-M/status"}]}.'
    )
    assert emqx[-1] == "{deny, all}."


def test_cli_issues_missing_credentials_once_into_a_private_csv(
    world: World, tmp_path: Path
) -> None:
    site_a = tmp_path / "a.csv"
    assert (
        hazmon(world.db_url, "device-credentials", "--site", "A", "--out", str(site_a)).returncode
        == 0
    )
    assert site_a.stat().st_mode & 0o777 == 0o600
    rows = list(csv.reader(site_a.read_text(encoding="utf-8").splitlines()))
    assert [r[0] for r in rows] == ["username", "A.TC1-M"]
    assert (
        hazmon(world.db_url, "device-credentials", "--out", str(site_a)).returncode == 2
    )  # never overwrite
    rest = tmp_path / "rest.csv"
    assert hazmon(world.db_url, "device-credentials", "--out", str(rest)).returncode == 0
    rest_rows = csv.reader(rest.read_text(encoding="utf-8").splitlines())
    assert [r[0] for r in rest_rows] == ["username", "B.TC1-M"]
    with psycopg.connect(world.db_url) as conn:
        credentials = conn.execute(
            "SELECT username, password_hash FROM device_credentials"
        ).fetchall()
        stored: dict[str, str] = {str(user): str(hash_) for user, hash_ in credentials}
    assert set(stored) == {"A.TC1-M", "B.TC1-M"}
    assert rows[1][1] not in stored["A.TC1-M"]
    assert stored["A.TC1-M"].startswith("$7$")


def _settings(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_listener_file_defines_the_listener_then_binds_client_ids_to_usernames() -> None:
    passwd, acl = Path("/etc/mosquitto/hazmon/passwd"), Path("/etc/mosquitto/hazmon/acl")
    # listener options apply to the listener line above them in the same file
    assert _settings(mosquitto_listener_file(Listener(), passwd, acl)) == [
        "listener 1883",
        "allow_anonymous false",
        "password_file /etc/mosquitto/hazmon/passwd",
        "acl_file /etc/mosquitto/hazmon/acl",
        "use_username_as_clientid true",
    ]
    tls = Listener(8883, "0.0.0.0", Path("/etc/ssl/broker.pem"), Path("/etc/ssl/broker.key"))
    assert _settings(mosquitto_listener_file(tls, passwd, acl))[:3] == [
        "listener 8883 0.0.0.0",
        "certfile /etc/ssl/broker.pem",
        "keyfile /etc/ssl/broker.key",
    ]


@pytest.mark.parametrize(
    "listener",
    [
        {"port": 0},
        {"port": 65536},
        {"certfile": Path("/c.pem")},
        {"address": "0.0.0.0 1884"},
        {"certfile": Path("/c.pem\nallow_anonymous true"), "keyfile": Path("/k")},
    ],
)
def test_listener_refuses_what_would_misconfigure_the_broker(listener: dict[str, object]) -> None:
    with pytest.raises(BrokerConfigError):
        Listener(**listener)  # type: ignore[arg-type]


def test_emqx_settings_bind_client_ids_and_deny_what_the_acl_does_not_grant() -> None:
    text = emqx_settings_file(Path("/etc/emqx/hazmon/acl.emqx.conf"))
    assert _settings(text) == [
        "mqtt.use_username_as_clientid = true",
        "authorization {",
        "  no_match = deny",
        '  sources = [{type = file, enable = true, path = "/etc/emqx/hazmon/acl.emqx.conf"}]',
        "}",
    ]


def test_ingest_workers_keep_their_hash_and_new_ones_get_a_password() -> None:
    accounts, issued = ingest_accounts(
        ["hazmon-ingest-0", "hazmon-ingest-1"],
        url_username=None,
        url_password=None,
        previous_hashes={"hazmon-ingest-0": "$7$old", "A.TC1-M": "$7$dev"},
    )
    assert accounts[0].password_hash == "$7$old"
    assert [a.username for a in accounts] == ["hazmon-ingest-0", "hazmon-ingest-1"]
    [(username, password)] = issued
    assert username == "hazmon-ingest-1"
    _, _, iterations, salt, digest = accounts[1].password_hash.split("$")
    expected = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(iterations)
    )
    assert base64.b64decode(digest) == expected


def test_the_url_account_comes_first_and_its_known_password_is_never_reissued() -> None:
    accounts, issued = ingest_accounts(
        ["hazmon-ingest-0", "hazmon-ingest-1"],
        url_username="hazmon-ingest-0",
        url_password="known",
        previous_hashes={"hazmon-ingest-1": "$7$old"},
    )
    assert [a.username for a in accounts] == ["hazmon-ingest-0", "hazmon-ingest-1"]
    assert accounts[1].password_hash == "$7$old"
    assert issued == []
    legacy, issued = ingest_accounts(
        [], url_username="hazmon-ingest", url_password="known", previous_hashes={}
    )
    assert [a.username for a in legacy] == ["hazmon-ingest"]
    assert issued == []


@pytest.mark.parametrize(
    "workers", [["A.TC1-M"], ["worker 1"], ["-x"], [""], ["w" * 65], ["w1", "w2", "w1"]]
)
def test_ingest_worker_names_cannot_collide_or_break_the_files(workers: list[str]) -> None:
    with pytest.raises(BrokerConfigError):
        ingest_accounts(workers, url_username=None, url_password=None, previous_hashes={})


def test_service_accounts_refuse_names_that_break_the_password_file() -> None:
    for username in ["", "a:b", "a b", "a/b", "#"]:
        with pytest.raises(BrokerConfigError):
            ServiceAccount(username, "$7$h")


def test_ingest_env_is_settings_that_parse_back_to_the_account() -> None:
    lines = _settings(ingest_env("hazmon-ingest-1", "p@ss:/w", "::1", 8883))
    env = dict(line.split("=", 1) for line in lines)
    assert env["HAZMON_MQTT_CLIENT_ID"] == "hazmon-ingest-1"
    assert MqttEndpoint.parse(env["HAZMON_MQTT_URL"]) == MqttEndpoint(
        "::1", 8883, "hazmon-ingest-1", "p@ss:/w"
    )


def test_cli_writes_every_file_and_keeps_worker_passwords_across_runs(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("A"))
    assert hazmon(db_url, "device-credentials", "--out", str(tmp_path / "d.csv")).returncode == 0
    out = tmp_path / "broker"
    args = ["broker-config", "--out", str(out), "--ingest-worker", "hazmon-ingest-0"]
    first = hazmon(db_url, *args, "--ingest-worker", "hazmon-ingest-1")
    assert first.returncode == 0, first.stderr
    for name in ["passwd", "acl", "acl.emqx.conf", "hazmon-security.conf", "hazmon-emqx.hocon"]:
        assert (out / name).is_file(), name
    assert (out / "passwd").stat().st_mode & 0o777 == 0o600
    envs = sorted((out / "ingest").iterdir())
    assert [e.name for e in envs] == ["hazmon-ingest-0.env", "hazmon-ingest-1.env"]
    assert {e.stat().st_mode & 0o777 for e in envs} == {0o600}
    hashes = read_password_hashes(out / "passwd")
    assert list(hashes) == ["hazmon-ingest-0", "hazmon-ingest-1", "A.TC1-M"]
    security = (out / "hazmon-security.conf").read_text(encoding="utf-8")
    assert f"password_file {out.resolve() / 'passwd'}" in security.splitlines()

    # again, worker 1 no longer listed: worker 0 keeps its hash and gets no new password
    envs[0].unlink()
    again = hazmon(db_url, *args)
    assert again.returncode == 0, again.stderr
    assert read_password_hashes(out / "passwd")["hazmon-ingest-0"] == hashes["hazmon-ingest-0"]
    assert "hazmon-ingest-1" not in read_password_hashes(out / "passwd")
    assert not envs[0].exists()
    assert "removed: hazmon-ingest-1" in again.stderr


def test_cli_refuses_bad_worker_names_and_half_a_tls_pair(db_url: str, tmp_path: Path) -> None:
    out = str(tmp_path / "broker")
    bad_name = hazmon(db_url, "broker-config", "--out", out, "--ingest-worker", "A.TC1-M")
    assert bad_name.returncode == 2
    assert "no dot" in bad_name.stderr
    half_tls = hazmon(db_url, "broker-config", "--out", out, "--certfile", "/c.pem")
    assert half_tls.returncode == 2
    assert not (tmp_path / "broker").exists()


def test_cli_without_new_flags_still_writes_the_url_account(db_url: str, tmp_path: Path) -> None:
    written = hazmon(
        db_url,
        "broker-config",
        "--out",
        str(tmp_path / "broker"),
        HAZMON_MQTT_URL="mqtt://hazmon-ingest:s3cret@127.0.0.1:1883",
    )
    assert written.returncode == 0, written.stderr
    assert list(read_password_hashes(tmp_path / "broker" / "passwd")) == ["hazmon-ingest"]
    assert not (tmp_path / "broker" / "ingest").exists()
    # the broker names its session after the account, not after HAZMON_MQTT_CLIENT_ID
    assert "HAZMON_MQTT_CLIENT_ID=hazmon-ingest" in written.stderr
