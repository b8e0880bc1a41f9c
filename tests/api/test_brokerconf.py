"""Broker credentials and the broker files' text (the real-broker test is test_broker_acl.py)."""

from __future__ import annotations

import base64
import csv
import hashlib
from pathlib import Path

import psycopg

from hazmon.brokerconf import (
    DeviceAccount,
    ServiceAccount,
    acl_file,
    emqx_acl_file,
    mosquitto_hash,
    password_file,
)
from tests.api.conftest import World, hazmon

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
        stored = dict(conn.execute("SELECT username, password_hash FROM device_credentials"))
    assert set(stored) == {"A.TC1-M", "B.TC1-M"}
    assert rows[1][1] not in stored["A.TC1-M"]
    assert stored["A.TC1-M"].startswith("$7$")
