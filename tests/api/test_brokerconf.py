"""The broker files' text, line by line (the real-broker test is test_broker_acl.py)."""

from __future__ import annotations

import base64
import hashlib

from hazmon.brokerconf import (
    DeviceAccount,
    ServiceAccount,
    acl_file,
    emqx_acl_file,
    mosquitto_hash,
    password_file,
)

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
