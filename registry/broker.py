"""Broker security from the device registry: Mosquitto's password file, ACL and listener.

Every gateway device has an MQTT account `{site_code}.{device_code}` (site and device codes
cannot contain a dot, so the name is unambiguous) whose password is stored only as Mosquitto's
PBKDF2-SHA512 hash (`$7$iterations$salt$hash`, the format of `mosquitto_passwd` 2.x). The ACL
lets each device publish its own telemetry and status topics and nothing else: no subscription,
no other site's or device's topic. Service accounts (one per ingest worker) may read the whole
topic root.

The client id is bound to the account: the generated listener sets Mosquitto's
`use_username_as_clientid`, so a client's session is always named after its username. Without
it any account could connect with another gateway's (or ingest's) client id and take over its
session: the victim is disconnected, its last will published, and a persistent session's queued
messages go to the intruder. Hence one account per ingest worker, whose username is its
`HAZMON_MQTT_CLIENT_ID`. docs/api.md shows how to load the files into a production Mosquitto,
or the same rules (`acl.emqx.conf`, `hazmon-emqx.hocon`) into EMQX.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from hazmon.wire import status_topic, telemetry_topic

UPSERT_CREDENTIALS_SQL = """
    INSERT INTO device_credentials (device_id, username, password_hash)
    VALUES (%(device_id)s, %(username)s, %(password_hash)s)
    ON CONFLICT (device_id) DO UPDATE SET username = EXCLUDED.username,
        password_hash = EXCLUDED.password_hash, created_at = now()"""
"""Store a device's account (shared by the API and the CLI)."""
PBKDF2_ITERATIONS = 10_000
"""Mosquitto's own default is 101; the broker pays this once per CONNECT, not per message."""
SALT_BYTES = 12
SECURITY_CONF = "hazmon-security.conf"
"""The Mosquitto listener snippet, for `include_dir`."""
EMQX_CONF = "hazmon-emqx.hocon"
"""The EMQX settings snippet, for `include` in `emqx.conf`."""
INGEST_ENV_DIR = "ingest"
"""Subdirectory of the output with one `{worker}.env` per newly issued ingest account."""
_WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# A username that would break a `user:hash` line, an ACL `user` line or an MQTT client id.
_BAD_USERNAME = re.compile(r"[\s:#+/]|^$")


class BrokerConfigError(ValueError):
    """The broker configuration asked for cannot be written; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def mosquitto_hash(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Hash a password as Mosquitto 2.x expects it: `$7$<iterations>$<salt b64>$<hash b64>`."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def device_username(site_code: str, device_code: str) -> str:
    """The MQTT account of a device: `{site_code}.{device_code}`."""
    return f"{site_code}.{device_code}"


def new_password() -> str:
    """A fresh random device password (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class DeviceAccount:
    """One gateway device's broker account."""

    username: str
    password_hash: str
    site_code: str
    device_code: str


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A hazmon service (an ingest worker) that reads every topic under the root.

    With client ids bound to accounts, `username` is also the worker's client id, the name of
    its persistent session.
    """

    username: str
    password_hash: str

    def __post_init__(self) -> None:
        if _BAD_USERNAME.search(self.username):
            raise BrokerConfigError(
                f"service account {self.username!r}: a broker username must be non-empty, "
                "without whitespace, ':', '#', '+' or '/'"
            )


@dataclass(frozen=True, slots=True)
class Listener:
    """The Mosquitto listener the gateways and ingest connect to.

    Args:
        port: TCP port.
        address: bind address or host name; None listens on every interface.
        certfile: server certificate (PEM) for TLS; with `keyfile`, or neither.
        keyfile: its private key (PEM).
    """

    port: int = 1883
    address: str | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise BrokerConfigError(f"listener port must be 1-65535, got {self.port}")
        if (self.certfile is None) != (self.keyfile is None):
            raise BrokerConfigError("TLS needs both --certfile and --keyfile, or neither")
        values = [self.address or "", str(self.certfile or ""), str(self.keyfile or "")]
        if any("\n" in v or "\r" in v for v in values) or " " in (self.address or ""):
            raise BrokerConfigError("listener address and TLS paths must be single words/lines")


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """What `write_broker_config` wrote."""

    passwd: Path
    acl: Path
    security_conf: Path
    emqx_acl: Path
    emqx_conf: Path
    devices: int
    services: list[str]
    """Usernames of the service (ingest) accounts written."""
    issued: list[Path] = field(default_factory=list)
    """One `.env` file (mode 0600) per ingest account given a new password by this run."""
    dropped: list[str] = field(default_factory=list)
    """Service accounts of the previous password file that this run no longer lists."""


def ingest_worker_name(name: str) -> str:
    """Check an ingest worker's account name (also its client id); return it.

    Letters, digits, `-` and `_`, at most 64, and never a dot, so that it cannot collide with a
    device account `{site}.{device}`.
    """
    if not _WORKER_NAME.fullmatch(name):
        raise BrokerConfigError(
            f"ingest worker name {name!r}: use 1-64 letters, digits, '-' or '_' "
            "(no dot: device accounts are site.device), starting with a letter or digit"
        )
    return name


def read_password_hashes(path: Path) -> dict[str, str]:
    """The `username -> hash` lines of an existing Mosquitto password file (none if absent)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    hashes = {}
    for line in text.splitlines():
        username, sep, password_hash = line.partition(":")
        if sep and username and not line.startswith("#"):
            hashes[username] = password_hash
    return hashes


def ingest_accounts(
    workers: Sequence[str],
    *,
    url_username: str | None,
    url_password: str | None,
    previous_hashes: Mapping[str, str],
) -> tuple[list[ServiceAccount], list[tuple[str, str]]]:
    """The ingest workers' broker accounts, and the passwords issued to new ones.

    The account of `HAZMON_MQTT_URL` (if it has `user:password`) comes first, hashed from that
    password as before; each named worker keeps the hash it has in the previous password file
    (regenerating must not lock out running workers), and a worker without one gets a new
    random password, returned once as (username, password).

    Raises:
        BrokerConfigError: a malformed or repeated worker name.
    """
    names = [ingest_worker_name(name) for name in workers]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BrokerConfigError(f"ingest worker given more than once: {', '.join(repeated)}")
    accounts: list[ServiceAccount] = []
    issued: list[tuple[str, str]] = []
    if url_username and url_password:
        accounts.append(ServiceAccount(url_username, mosquitto_hash(url_password)))
    for name in names:
        if name == url_username and url_password:
            continue
        if name in previous_hashes:
            accounts.append(ServiceAccount(name, previous_hashes[name]))
        else:
            password = new_password()
            accounts.append(ServiceAccount(name, mosquitto_hash(password)))
            issued.append((name, password))
    return accounts, issued


def _device_topics(topic_root: str, device: DeviceAccount) -> tuple[str, str]:
    return (
        telemetry_topic(topic_root, device.site_code, device.device_code),
        status_topic(topic_root, device.site_code, device.device_code),
    )


def password_file(devices: Sequence[DeviceAccount], services: Sequence[ServiceAccount]) -> str:
    """The text of Mosquitto's `password_file`: one `user:hash` line per account."""
    accounts = [(a.username, a.password_hash) for a in services]
    accounts += [(a.username, a.password_hash) for a in devices]
    return "".join(f"{username}:{password_hash}\n" for username, password_hash in accounts)


def acl_file(
    devices: Sequence[DeviceAccount], services: Sequence[ServiceAccount], topic_root: str
) -> str:
    """The text of Mosquitto's `acl_file`.

    A device may write `{root}/{site}/{device}/telemetry` and `.../status` and read nothing;
    a service account may read `{root}/#`. Anything not granted is denied, anonymous clients
    included (no lines precede the first `user`).
    """
    out = ["# Generated by `hazmon broker-config` from the device registry; do not edit.\n"]
    for service in services:
        out.append(f"\nuser {service.username}\ntopic read {topic_root}/#\n")
    for device in devices:
        telemetry, status = _device_topics(topic_root, device)
        out.append(f"\nuser {device.username}\ntopic write {telemetry}\ntopic write {status}\n")
    return "".join(out)


def emqx_acl_file(
    devices: Sequence[DeviceAccount], services: Sequence[ServiceAccount], topic_root: str
) -> str:
    """The same rules as `acl_file` for EMQX's file authorizer (`acl.conf`, Erlang terms).

    Use with `authorization.no_match = deny`; the final `{deny, all}.` says so here as well.
    Topics are given as `{eq, …}` so that no site or device code is read as a wildcard.
    """
    out = ["%% Generated by `hazmon broker-config` from the device registry; do not edit.\n"]
    for service in services:
        out.append(
            f'{{allow, {{username, "{service.username}"}}, subscribe, ["{topic_root}/#"]}}.\n'
        )
    for device in devices:
        telemetry, status = _device_topics(topic_root, device)
        out.append(
            f'{{allow, {{username, "{device.username}"}}, publish, '
            f'[{{eq, "{telemetry}"}}, {{eq, "{status}"}}]}}.\n'
        )
    out.append("{deny, all}.\n")
    return "".join(out)


def mosquitto_listener_file(listener: Listener, passwd: Path, acl: Path) -> str:
    """The text of `hazmon-security.conf`: the listener, its authentication and ACL, and the
    client id bound to the username.

    The listener is defined here, not left to the main configuration, because Mosquitto 2.0
    applies a listener option such as `use_username_as_clientid` to the last `listener` line *of
    the same file*: in a file of its own (conf.d) it would configure the implicit default
    listener instead, which then opens port 1883 on every interface, without binding the
    listener the clients actually use (mosquitto.conf(5); src/conf.c, `cur_listener` starts at
    the default listener in each file). The security options follow the `listener` line, so the
    file is right with `per_listener_settings` either false (they are global) or true.
    """
    lines = [
        "# Generated by `hazmon broker-config` from the device registry; do not edit.",
        "# Load it with include_dir (docs/api.md) and restart Mosquitto: listener options are",
        "# not reloaded on SIGHUP. passwd and acl are (SIGHUP re-reads them).",
        f"listener {listener.port}" + (f" {listener.address}" if listener.address else ""),
    ]
    if listener.certfile is not None and listener.keyfile is not None:
        lines += [f"certfile {listener.certfile}", f"keyfile {listener.keyfile}"]
    lines += [
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
        "# A client's id is replaced by its username, so no account can take over another's",
        "# session (disconnect it, fire its last will, receive its queue); a client without a",
        "# username is refused.",
        "use_username_as_clientid true",
    ]
    return "".join(f"{line}\n" for line in lines)


def emqx_settings_file(emqx_acl: Path) -> str:
    """The text of `hazmon-emqx.hocon` for EMQX 5: the same binding and the file authorizer.

    `mqtt.use_username_as_clientid` replaces the client id before authentication and before
    the session is opened; ACL rules on `clientid` could not do this, because a takeover happens
    at CONNECT, before any publish or subscribe is authorized.
    """
    path = str(emqx_acl).replace("\\", "\\\\").replace('"', '\\"')
    return (
        "## Generated by `hazmon broker-config` from the device registry; do not edit.\n"
        "## Include it at the end of emqx.conf (docs/api.md). Not tested here: the tests run"
        " Mosquitto.\n"
        "mqtt.use_username_as_clientid = true\n"
        "authorization {\n"
        "  no_match = deny\n"
        f'  sources = [{{type = file, enable = true, path = "{path}"}}]\n'
        "}\n"
    )


def ingest_env(username: str, password: str, host: str, port: int) -> str:
    """The settings of one ingest worker: its broker URL with its account, and its client id."""
    netloc = f"[{host}]" if ":" in host else host
    url = f"mqtt://{quote(username, safe='')}:{quote(password, safe='')}@{netloc}:{port}"
    return (
        f"# hazmon ingest worker {username}: its broker account, issued once by"
        " `hazmon broker-config`.\n"
        f"HAZMON_MQTT_URL={url}\n"
        f"HAZMON_MQTT_CLIENT_ID={username}\n"
    )


def issue_missing_credentials(
    conn: psycopg.Connection[Any], site_code: str | None = None
) -> list[tuple[str, str]]:
    """Give every device without broker credentials (of one site, or all) a new password.

    Commits; returns (username, password) pairs, the only time the passwords are known.
    """
    with conn.transaction():
        devices = conn.execute(
            """SELECT d.id, s.code, d.code FROM devices d JOIN sites s ON s.id = d.site_id
               LEFT JOIN device_credentials c ON c.device_id = d.id
               WHERE c.device_id IS NULL AND (%(site)s::text IS NULL OR s.code = %(site)s)
               ORDER BY s.code, d.code""",
            {"site": site_code},
        ).fetchall()
        issued = []
        for device_id, site, device in devices:
            username, password = device_username(site, device), new_password()
            conn.execute(
                UPSERT_CREDENTIALS_SQL,
                {
                    "device_id": device_id,
                    "username": username,
                    "password_hash": mosquitto_hash(password),
                },
            )
            issued.append((username, password))
    return issued


def load_device_accounts(conn: psycopg.Connection[Any]) -> list[DeviceAccount]:
    """Every device that has broker credentials, ordered by username."""
    rows = conn.execute(
        """SELECT c.username, c.password_hash, s.code, d.code
           FROM device_credentials c
           JOIN devices d ON d.id = c.device_id
           JOIN sites s ON s.id = d.site_id
           ORDER BY c.username"""
    ).fetchall()
    return [DeviceAccount(*row) for row in rows]


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 (an existing file keeps its owner and inode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def write_broker_config(
    conn: psycopg.Connection[Any],
    out_dir: Path,
    topic_root: str,
    services: Sequence[ServiceAccount],
    *,
    listener: Listener | None = None,
    issued: Sequence[tuple[str, str]] = (),
    broker_host: str = "127.0.0.1",
    broker_port: int = 1883,
) -> BrokerFiles:
    """Write the broker files into `out_dir`.

    `passwd` (mode 0600), `acl` and `hazmon-security.conf` for Mosquitto; `acl.emqx.conf` and
    `hazmon-emqx.hocon` for EMQX; and for each newly issued ingest account (`issued`, from
    `ingest_accounts`) `ingest/{username}.env` (mode 0600) with the worker's `HAZMON_MQTT_URL`
    (at `broker_host:broker_port`) and `HAZMON_MQTT_CLIENT_ID`.

    Raises:
        BrokerConfigError: two accounts with one username.
    """
    devices = load_device_accounts(conn)
    listener = listener or Listener()
    usernames = [a.username for a in services] + [d.username for d in devices]
    repeated = sorted({u for u in usernames if usernames.count(u) > 1})
    if repeated:
        raise BrokerConfigError(f"more than one broker account named {', '.join(repeated)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir = out_dir.resolve()  # the broker reads the paths from its own working directory
    passwd = out_dir / "passwd"
    acl = out_dir / "acl"
    emqx_acl = out_dir / "acl.emqx.conf"
    previous = [u for u in read_password_hashes(passwd) if "." not in u]  # not devices
    _write_private(passwd, password_file(devices, services))
    acl.write_text(acl_file(devices, services, topic_root), encoding="utf-8")
    emqx_acl.write_text(emqx_acl_file(devices, services, topic_root), encoding="utf-8")
    security = out_dir / SECURITY_CONF
    security.write_text(mosquitto_listener_file(listener, passwd, acl), encoding="utf-8")
    emqx = out_dir / EMQX_CONF
    emqx.write_text(emqx_settings_file(emqx_acl), encoding="utf-8")
    env_files = []
    if issued:
        env_dir = out_dir / INGEST_ENV_DIR
        env_dir.mkdir(mode=0o700, exist_ok=True)
        for username, password in issued:
            env_file = env_dir / f"{username}.env"
            _write_private(env_file, ingest_env(username, password, broker_host, broker_port))
            env_files.append(env_file)
    written = [a.username for a in services]
    return BrokerFiles(
        passwd=passwd,
        acl=acl,
        security_conf=security,
        emqx_acl=emqx_acl,
        emqx_conf=emqx,
        devices=len(devices),
        services=written,
        issued=env_files,
        dropped=[u for u in previous if u not in written],
    )
