"""The `hazmon` command line: migrate, registry import, ingest, api, simulate, run, demo, token,
broker-config."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from hazmon import logs
from hazmon.db import DatabaseError, connect, redact
from hazmon.settings import Settings

log = logging.getLogger("hazmon")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Create the database if needed and apply pending migrations."""
    from hazmon.migrate import migrate

    result = migrate(settings.database_url)
    print(
        f"数据库已是最新 / database up to date: {redact(settings.database_url)}\n"
        f"  新建数据库 / created: {result.created_database}; "
        f"已应用 / applied: {', '.join(result.applied) or '-'}\n"
        f"  TimescaleDB license: {result.timescale_license}; "
        f"跳过（需 Timescale 许可）/ skipped (need the Timescale license): "
        f"{', '.join(result.skipped_tsl) or '-'}"
    )
    return 0


def cmd_registry_import(settings: Settings, args: argparse.Namespace) -> int:
    """Load an inventory file of sites, works and devices."""
    from registry import import_inventory, load_inventory

    inventory = load_inventory(Path(args.file))
    with connect(settings.database_url) as conn:
        summary = import_inventory(conn, inventory)
    print(
        f"已导入 / imported {args.file}: 地区 regions {summary.regions}, 工地 sites {summary.sites}, "
        f"危大工程 works {summary.works}, 设备 devices {summary.devices}, 序列 series {summary.series}"
    )
    return 0


def _serve_metrics(settings: Settings, args: argparse.Namespace) -> None:
    """Expose this process's Prometheus metrics on `--metrics-port`, if one was given."""
    from prometheus_client import start_http_server

    if args.metrics_port:
        start_http_server(args.metrics_port, addr=settings.api_host)


def _add_metrics_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="在此端口提供 Prometheus 指标 / serve Prometheus metrics on this port (0: off)",
    )


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ingest worker until SIGINT/SIGTERM."""
    from ingest import IngestMetrics, IngestService

    _serve_metrics(settings, args)
    stop = _stop_on_signals()
    IngestService(settings, IngestMetrics.create()).run(stop)
    return 0


def cmd_dead_letters_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Decode stored dead letters again against the current registry; store what now decodes."""
    from ingest import Reason, replay_dead_letters

    if args.reason is not None and args.reason not in set(Reason):
        print(
            f"输入错误 / invalid input: unknown reason {args.reason!r}; "
            f"known: {', '.join(sorted(Reason))}",
            file=sys.stderr,
        )
        return 2
    with connect(settings.database_url) as conn:
        summary = replay_dead_letters(conn, settings, reason=args.reason)
    refused = ", ".join(f"{r} {n}" for r, n in sorted(summary.still_refused.items())) or "-"
    print(
        f"死信重放 / dead letters replayed: {summary.replayed} of {summary.attempted}; "
        f"新存读数 / readings stored: {summary.readings_stored} "
        f"(已存在 / already stored: {summary.readings_already_stored})\n"
        f"  仍被拒绝 / still refused: {refused}"
    )
    return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the HTTP API until SIGINT/SIGTERM."""
    import uvicorn

    from api import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_config=None,
        access_log=False,
    )
    return 0


def cmd_notify(settings: Settings, args: argparse.Namespace) -> int:
    """Deliver alert notifications from the outbox to webhooks until SIGINT/SIGTERM."""
    from notify import Notifier

    _serve_metrics(settings, args)
    Notifier(settings.database_url).run(_stop_on_signals())
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Publish the tower crane scenario (moment over 90 % then 100 % of rated)."""
    from simulators import CraneSpec, GatewayPublisher, crane_lifts, publish_series

    spec = CraneSpec(rated_load_t=args.rated_load_t, rated_moment_tm=args.rated_moment_tm)
    with GatewayPublisher(settings.mqtt, settings.topic_root, args.site, args.device) as gateway:
        samples = (s.values(spec) for s in crane_lifts(spec, period_s=args.period_s))
        count = publish_series(gateway, samples, period_s=args.period_s, speedup=args.speedup)
    print(f"已发布 / published {count} readings sets to {gateway.telemetry_topic}")
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Run ingest and the API as one supervised process group."""
    from hazmon.supervisor import Supervisor

    supervisor = Supervisor({"ingest": ["ingest"], "api": ["api"], "notify": ["notify"]})
    supervisor.install_signal_handlers()
    return supervisor.run()


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Load the demo inventory, start everything plus the simulator, print alerts as they open."""
    from hazmon.demo import run_demo

    return run_demo(settings, speedup=args.speedup, linger_s=args.linger_s)


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create an API token and print it once."""
    from datetime import UTC, datetime

    from hazmon.auth import create_token, grant, site_id_by_code

    with connect(settings.database_url) as conn:
        site_id = site_id_by_code(conn, args.site) if args.site else None
        new = grant(
            name=args.name,
            role=args.role,
            expires_days=args.expires_days,
            now=datetime.now(UTC),
            region=args.region or "",
            enterprise=args.enterprise or "",
            site_id=site_id,
        )
        token_id = create_token(conn, new)
    print(
        f"令牌 / token #{token_id} ({args.role}, 到期 / expires {new.row['expires_at']:%Y-%m-%d}), "
        f"仅显示一次 / shown only once:\n{new.token}"
    )
    return 0


def cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    """List API tokens (never the tokens themselves): id, name, role, scope, state."""
    with connect(settings.database_url) as conn:
        rows = conn.execute(
            """SELECT id, name, role, region_code, enterprise, site_id, expires_at,
                      revoked_at IS NOT NULL, expires_at < now()
               FROM api_tokens ORDER BY id"""
        ).fetchall()
    for token_id, name, role, region, enterprise, site_id, expires, revoked, expired in rows:
        scope = region or enterprise or (f"site #{site_id}" if site_id else "-")
        state = "revoked" if revoked else "expired" if expired else f"until {expires:%Y-%m-%d}"
        print(f"#{token_id}\t{role}\t{scope}\t{state}\t{name}")
    return 0


def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    """Revoke an API token by id."""
    from hazmon.auth import revoke_token

    with connect(settings.database_url) as conn:
        revoked = revoke_token(conn, args.id)
    if not revoked:
        print(f"无此有效令牌 / no unrevoked token #{args.id}", file=sys.stderr)
        return 2
    print(f"已吊销 / revoked token #{args.id}")
    return 0


def cmd_device_credentials(settings: Settings, args: argparse.Namespace) -> int:
    """Issue broker credentials to every device that has none; write them to a CSV once."""
    import csv
    import os

    from registry.broker import issue_missing_credentials

    out = Path(args.out)
    if out.exists():
        print(
            f"输入错误 / invalid input: {out} exists; passwords are written once", file=sys.stderr
        )
        return 2
    with connect(settings.database_url) as conn:
        issued = issue_missing_credentials(conn, args.site)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["username", "password"])
        writer.writerows(issued)
    print(
        f"已发放 / issued {len(issued)} device credentials to {out} (仅此一次 / shown only here); "
        "then run `hazmon broker-config`"
    )
    return 0


def cmd_broker_config(settings: Settings, args: argparse.Namespace) -> int:
    """Write Mosquitto's password file, ACL and listener (and EMQX's) from the device registry."""
    from registry.broker import (
        Listener,
        ingest_accounts,
        read_password_hashes,
        write_broker_config,
    )

    out = Path(args.out)
    endpoint = settings.mqtt
    listener = Listener(
        port=args.listener_port,
        address=args.listener_address,
        certfile=Path(args.certfile).resolve() if args.certfile else None,
        keyfile=Path(args.keyfile).resolve() if args.keyfile else None,
    )
    services, issued = ingest_accounts(
        args.ingest_worker,
        url_username=endpoint.username,
        url_password=endpoint.password,
        previous_hashes=read_password_hashes(out / "passwd"),
    )
    if not services:
        print(
            "注意 / note: no ingest account is written (no --ingest-worker, and HAZMON_MQTT_URL "
            "has no user:password); ingest cannot connect to a broker that refuses anonymous "
            "clients",
            file=sys.stderr,
        )
    if endpoint.username and endpoint.password and settings.mqtt_client_id != endpoint.username:
        print(
            f"注意 / note: the broker names the session of account {endpoint.username!r} after "
            f"it (use_username_as_clientid); set HAZMON_MQTT_CLIENT_ID={endpoint.username} "
            f"for that worker (now {settings.mqtt_client_id!r})",
            file=sys.stderr,
        )
    with connect(settings.database_url) as conn:
        files = write_broker_config(
            conn,
            out,
            settings.topic_root,
            services,
            listener=listener,
            issued=issued,
            broker_host=endpoint.host,
            broker_port=endpoint.port,
        )
    if files.dropped:
        print(
            f"注意 / note: service accounts no longer listed, removed: {', '.join(files.dropped)} "
            "(pass every worker's --ingest-worker on each run)",
            file=sys.stderr,
        )
    print(
        f"已写入 / wrote {files.passwd}, {files.acl}, {files.security_conf}, {files.emqx_acl}, "
        f"{files.emqx_conf}: 设备 devices {files.devices}, "
        f"服务 services {len(files.services)} ({', '.join(files.services) or '-'})"
    )
    for env_file in files.issued:
        print(f"  新接入账号 / new ingest account: {env_file} (仅此一次 / written once, 0600)")
    print(
        f"  Mosquitto: include_dir with {files.security_conf.name} (it defines listener "
        f"{listener.port}), then restart once; later runs: reload (SIGHUP). See docs/api.md"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with bilingual help."""
    parser = argparse.ArgumentParser(
        prog="hazmon",
        description="危大工程监测预警后端 / monitoring backend for major-hazard construction works. "
        "设置见 HAZMON_* 环境变量 / settings come from HAZMON_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "migrate", help="建库并升级表结构 / create the database and apply migrations"
    ).set_defaults(func=cmd_migrate)

    registry = sub.add_parser("registry", help="登记册 / registry of sites, works and devices")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    imp = registry_sub.add_parser(
        "import", help="导入工地、危大工程、设备清单 / import an inventory (YAML or JSON)"
    )
    imp.add_argument("file", help="清单文件 / inventory file (docs/inventory.md)")
    imp.set_defaults(func=cmd_registry_import)

    ing = sub.add_parser("ingest", help="接收 MQTT 遥测并入库 / ingest MQTT telemetry")
    _add_metrics_port(ing)
    ing.set_defaults(func=cmd_ingest)

    dead = sub.add_parser("dead-letters", help="死信 / refused payloads")
    dead_sub = dead.add_subparsers(dest="dead_letters_command", required=True, metavar="ACTION")
    replay = dead_sub.add_parser(
        "replay",
        help="按当前登记册重新解码并入库 / decode again against the current registry and store",
    )
    replay.add_argument("--reason", help="只重放此原因 / only dead letters of this reason")
    replay.set_defaults(func=cmd_dead_letters_replay)

    api = sub.add_parser("api", help="HTTP 接口 / serve the HTTP API")
    api.add_argument("--host", help="监听地址 / bind address (default HAZMON_API_HOST)")
    api.add_argument("--port", type=int, help="端口 / port (default HAZMON_API_PORT)")
    api.set_defaults(func=cmd_api)

    notify = sub.add_parser("notify", help="推送报警到 Webhook / deliver alerts to webhooks")
    _add_metrics_port(notify)
    notify.set_defaults(func=cmd_notify)

    sim = sub.add_parser("simulate", help="模拟塔吊网关 / simulate a tower crane gateway")
    sim.add_argument("--site", default="DEMO-WH-001", help="工地编号 / site code")
    sim.add_argument("--device", default="TC1-M", help="设备编号 / device code")
    sim.add_argument("--period-s", type=float, default=1.0, help="采样周期 / sampling period, s")
    sim.add_argument(
        "--speedup", type=float, default=10.0, help="加速倍数 / time compression factor"
    )
    sim.add_argument("--rated-load-t", type=float, default=8.0, help="额定起重量 / rated load, t")
    sim.add_argument(
        "--rated-moment-tm", type=float, default=160.0, help="额定力矩 / rated moment, t·m"
    )
    sim.set_defaults(func=cmd_simulate)

    sub.add_parser(
        "run", help="一并运行接入、接口与推送 / run ingest, the API and the notifier, supervised"
    ).set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo",
        help="演示：基坑补传数据与塔吊超限，实时显示报警 / demo: a pit flushing buffered data and a crane overload, alerts live",
    )
    demo.add_argument(
        "--speedup", type=float, default=10.0, help="加速倍数 / time compression factor"
    )
    demo.add_argument(
        "--linger-s",
        type=float,
        default=5.0,
        help="场景结束后继续运行的秒数 / seconds to keep running after the scenario",
    )
    demo.set_defaults(func=cmd_demo)
    token = sub.add_parser("token", help="接口令牌 / API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser(
        "create", help="新建令牌（仅显示一次）/ create a token (shown once)"
    )
    create.add_argument(
        "--role",
        required=True,
        choices=["admin", "regulator", "inspector", "enterprise", "gateway"],
        help="角色 / role",
    )
    create.add_argument("--name", required=True, help="名称 / who the token is for")
    create.add_argument(
        "--region", help="区划代码或前缀 / region code or prefix (regulator, inspector)"
    )
    scope = create.add_mutually_exclusive_group()
    scope.add_argument("--enterprise", help="企业名称 / enterprise name (enterprise role)")
    scope.add_argument("--site", help="工地编号 / one site's code (enterprise role)")
    create.add_argument(
        "--expires-days", type=int, default=90, help="有效天数 / days until it expires"
    )
    create.set_defaults(func=cmd_token_create)
    revoke = token_sub.add_parser("revoke", help="吊销令牌 / revoke a token")
    revoke.add_argument("id", type=int, help="令牌编号 / token id")
    revoke.set_defaults(func=cmd_token_revoke)
    token_sub.add_parser(
        "list", help="列出令牌（不含令牌本身）/ list tokens (never the secrets)"
    ).set_defaults(func=cmd_token_list)

    broker = sub.add_parser(
        "broker-config",
        help="由设备登记生成代理密码、ACL 与监听配置 / write the broker's password file, ACL and "
        "listener from the registry",
    )
    broker.add_argument("--out", required=True, metavar="DIR", help="输出目录 / output directory")
    broker.add_argument(
        "--ingest-worker",
        action="append",
        default=[],
        metavar="NAME",
        help="接入进程的代理账号，可重复；用户名即其客户端 ID（HAZMON_MQTT_CLIENT_ID），新账号的"
        "设置写入 DIR/ingest/NAME.env / an ingest worker's broker account (repeatable); the "
        "username is its client id (HAZMON_MQTT_CLIENT_ID); a new one's settings go to "
        "DIR/ingest/NAME.env",
    )
    broker.add_argument(
        "--listener-port",
        type=int,
        default=1883,
        metavar="PORT",
        help="hazmon-security.conf 中监听端口 / the listener's port (default 1883)",
    )
    broker.add_argument(
        "--listener-address",
        metavar="ADDRESS",
        help="监听地址（缺省为全部网卡）/ the listener's bind address (default: every interface)",
    )
    broker.add_argument(
        "--certfile", metavar="FILE", help="TLS 服务器证书 / TLS server certificate (PEM)"
    )
    broker.add_argument("--keyfile", metavar="FILE", help="TLS 私钥 / TLS private key (PEM)")
    broker.set_defaults(func=cmd_broker_config)

    creds = sub.add_parser(
        "device-credentials",
        help="为尚无接入密码的设备发放密码（写入 CSV）/ issue missing device broker passwords",
    )
    creds.add_argument("--out", required=True, help="CSV 文件（新建，0600）/ new CSV file")
    creds.add_argument("--site", help="只此工地 / only this site's devices")
    creds.set_defaults(func=cmd_device_credentials)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hazmon` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"配置错误 / bad configuration: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        code: int = args.func(settings, args)
    except DatabaseError as exc:
        print(f"数据库错误 / database error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # InventoryError, CatalogueError and other bad input
        print(f"输入错误 / invalid input: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
