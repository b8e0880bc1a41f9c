"""The commands that set up and keep the registry: migrate, registry import, dead-letter replay,
device credentials and the broker's configuration."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from hazmon.db import DatabaseError, connect, redact
from hazmon.settings import Settings


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


def _aware_time(text: str, option: str) -> datetime:
    """An ISO 8601 time with a zone from the command line; InputError otherwise."""
    from hazmon.cli.common import InputError

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InputError(f"{option} needs a time zone, e.g. 2026-12-01T08:00+08:00")
    return value


def cmd_registry_sweep(settings: Settings, args: argparse.Namespace) -> int:
    """Write the reminders, overdue marks, escalations and missed inspections due now (once
    each); with --every-s, keep doing so until SIGINT/SIGTERM."""
    import asyncio
    from datetime import UTC

    import psycopg

    from hazmon.cli.common import stop_on_signals
    from registry.sweep import run_sweep, sweep_forever

    if args.every_s is not None:
        if args.now is not None:
            raise _input_error("--now is for a single sweep, not with --every-s")
        stop = stop_on_signals()
        asyncio.run(
            sweep_forever(settings.database_url, interval_s=args.every_s, stopped=stop.is_set)
        )
        return 0
    now = _aware_time(args.now, "--now") if args.now else datetime.now(UTC)

    async def once() -> tuple[int, int, int, int]:
        try:
            conn = await psycopg.AsyncConnection.connect(settings.database_url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise DatabaseError(
                f"cannot connect to {redact(settings.database_url)}: {exc}"
            ) from None
        async with conn:
            r = await run_sweep(conn, now=now)
        return r.remind, r.overdue, r.escalate, r.inspection_missed

    remind, overdue, escalate, missed = asyncio.run(once())
    print(
        f"期限检查 / sweep at {now.isoformat()}: 提醒 reminders {remind}, 逾期 overdue {overdue}, "
        f"升级 escalations {escalate}, 漏检 missed inspections {missed}"
    )
    return 0


def cmd_registry_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write one of the two lists (or the listed-supervision notice) to a CSV or XLSX file."""
    import asyncio
    import os

    import psycopg

    from hazmon.auth import region_prefix, site_id_by_code
    from registry import lists

    out = Path(args.out)
    fmt = args.format or (out.suffix.lstrip(".").lower() if out.suffix else "xlsx")
    if fmt not in ("csv", "xlsx"):
        raise _input_error(f"--format must be csv or xlsx (or an --out ending in one), got {fmt!r}")
    if out.exists() and not args.force:
        raise _input_error(f"{out} exists; pass --force to replace it")
    spec = lists.LISTS[args.list]
    with connect(settings.database_url) as conn:
        site_id = site_id_by_code(conn, args.site) if args.site else None
    filters = lists.ListFilters(
        region=region_prefix(args.region) if args.region else None,
        site_id=site_id,
        kind=args.kind,
        level=args.level,
        state=args.state,
        start=_aware_time(args.start, "--start") if args.start else None,
        end=_aware_time(args.end, "--end") if args.end else None,
    )

    async def rows() -> list[dict[str, object]]:
        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            return await lists.fetch_list(conn, spec, filters)

    try:
        found = asyncio.run(rows())
    except lists.ListTooLongError as exc:
        raise _input_error(str(exc)) from None
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as f:
        if fmt == "csv":
            for chunk in lists.csv_chunks(spec, found):
                f.write(chunk)
        else:
            lists.write_xlsx(spec, found, f)
    os.replace(partial, out)
    print(f"已导出 / exported {spec.title_zh} ({args.list}): {len(found)} 行 rows -> {out}")
    return 0


def _input_error(message: str) -> Exception:
    from hazmon.cli.common import InputError

    return InputError(message)


def cmd_dead_letters_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Ask an ingest worker to decode the stored dead letters again against the current registry
    (it stores and grades what now decodes) and wait for its result."""
    import asyncio

    import psycopg

    from hazmon.wire import Reason
    from registry import dead_letters

    if args.reason is not None and args.reason not in set(Reason):
        print(
            f"输入错误 / invalid input: unknown reason {args.reason!r}; "
            f"known: {', '.join(sorted(Reason))}",
            file=sys.stderr,
        )
        return 2

    async def replay() -> dead_letters.ReplayResult:
        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            request_id = await dead_letters.request_replay(conn, args.by, args.reason)
            print(f"已提交重放请求 / replay request #{request_id} queued; waiting for ingest")
            return await dead_letters.wait_for_replay(conn, request_id, args.wait_s)

    try:
        summary = asyncio.run(replay())
    except dead_letters.ReplayError as exc:
        print(f"未完成 / not done: {exc}", file=sys.stderr)
        return 1
    refused = ", ".join(f"{r} {n}" for r, n in sorted(summary.still_refused.items())) or "-"
    print(
        f"死信重放 / dead letters replayed: {summary.replayed} of {summary.attempted}; "
        f"新存读数 / readings stored: {summary.readings_stored} "
        f"(已存在 / already stored: {summary.readings_already_stored})\n"
        f"  仍被拒绝 / still refused: {refused}"
    )
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


def cmd_baseline_set(settings: Settings, args: argparse.Namespace) -> int:
    """Re-baseline a series: a dated record and an audit line, as the API's route does."""
    import asyncio
    from datetime import datetime

    import psycopg

    from registry import alerts

    try:
        valid_from = datetime.fromisoformat(args.valid_from)
    except ValueError:
        print(
            f"输入错误 / invalid input: --valid-from {args.valid_from!r} is not an ISO 8601 time",
            file=sys.stderr,
        )
        return 2
    if valid_from.tzinfo is None:
        print(
            "输入错误 / invalid input: --valid-from needs a time zone, e.g. 2026-12-01T08:00+08:00",
            file=sys.stderr,
        )
        return 2

    async def rebaseline() -> int:
        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            return await alerts.rebaseline(
                conn, args.series, args.value, valid_from, args.reason, args.by
            )

    try:
        baseline_id = asyncio.run(rebaseline())
    except alerts.AlertError as exc:
        print(f"输入错误 / invalid input: {exc}", file=sys.stderr)
        return 2
    print(
        f"已重设基准值 / re-baselined series #{args.series}: {args.value} from "
        f"{valid_from.isoformat()} (record #{baseline_id}); ingest applies it at its next "
        "registry refresh"
    )
    return 0


def add_baseline(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon baseline set`."""
    import getpass

    baseline = sub.add_parser("baseline", help="基准值 / baselines of cumulative rules")
    baseline_sub = baseline.add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    rebase = baseline_sub.add_parser(
        "set",
        help="重设监测序列的基准值（留存记录与审计）/ re-baseline a series (dated record, audited)",
    )
    rebase.add_argument("--series", type=int, required=True, help="序列编号 / series id")
    rebase.add_argument(
        "--value", type=float, required=True, help="基准值（指标单位）/ baseline, metric's unit"
    )
    rebase.add_argument(
        "--valid-from",
        required=True,
        metavar="ISO-TIME",
        help="生效时间（含时区）/ from when, with time zone, e.g. 2026-12-01T08:00+08:00",
    )
    rebase.add_argument("--reason", required=True, help="原因 / why (construction stage, ...)")
    rebase.add_argument(
        "--by",
        default=f"cli:{getpass.getuser()}",
        help="操作人 / who sets it (default cli:<login name>)",
    )
    rebase.set_defaults(func=cmd_baseline_set)


def add_migrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon migrate`."""
    sub.add_parser(
        "migrate", help="建库并升级表结构 / create the database and apply migrations"
    ).set_defaults(func=cmd_migrate)


def add_registry(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon registry import`."""
    registry = sub.add_parser("registry", help="登记册 / registry of sites, works and devices")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    imp = registry_sub.add_parser(
        "import", help="导入工地、危大工程、设备清单 / import an inventory (YAML or JSON)"
    )
    imp.add_argument("file", help="清单文件 / inventory file (docs/inventory.md)")
    imp.set_defaults(func=cmd_registry_import)
    sweep = registry_sub.add_parser(
        "sweep",
        help="期限检查：提醒、逾期、升级督办、漏检（每项只记一次）/ deadline sweep: reminders, "
        "overdue, escalation, missed inspections (each written once)",
    )
    sweep.add_argument(
        "--every-s",
        type=float,
        metavar="SECONDS",
        help="每隔多少秒检查一次，直到 SIGINT/SIGTERM（hazmon run 用 60）/ repeat every N seconds "
        "until stopped (hazmon run uses 60); without it, sweep once (for cron)",
    )
    sweep.add_argument(
        "--now",
        metavar="ISO-TIME",
        help="按此时刻检查（含时区；测试与补跑用）/ sweep as of this time (with zone; tests, catch-up)",
    )
    sweep.set_defaults(func=cmd_registry_sweep)
    export = registry_sub.add_parser(
        "export",
        help="导出两个清单或挂牌督办公告（CSV 或 XLSX）/ export the two lists or the notice of "
        "listed supervision (CSV or XLSX)",
    )
    export.add_argument(
        "list",
        choices=["hazards", "rectifications", "supervision"],
        help="hazards 动态隐患清单 | rectifications 整改措施清单 | supervision 挂牌督办公告",
    )
    export.add_argument("--out", required=True, metavar="FILE", help="输出文件 / output file")
    export.add_argument(
        "--format", choices=["csv", "xlsx"], help="格式（缺省按文件后缀）/ default: from --out"
    )
    export.add_argument("--force", action="store_true", help="覆盖已有文件 / replace FILE")
    export.add_argument("--region", help="区划前缀 / region prefix (2, 4 or 6 digits)")
    export.add_argument("--site", help="工地编号 / one site's code")
    export.add_argument("--kind", help="危大工程类别 / hazard kind (tower_crane, ...)")
    export.add_argument("--level", choices=["general", "major"], help="等级 / level")
    export.add_argument(
        "--state",
        choices=["registered", "assigned", "rectified", "verified", "closed"],
        help="状态 / the hazard's state",
    )
    export.add_argument("--start", metavar="ISO-TIME", help="期间起（含）/ from (with zone)")
    export.add_argument("--end", metavar="ISO-TIME", help="期间止（不含）/ until (with zone)")
    export.set_defaults(func=cmd_registry_export)


def add_dead_letters(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon dead-letters replay`."""
    import getpass

    dead = sub.add_parser("dead-letters", help="死信 / refused payloads")
    dead_sub = dead.add_subparsers(dest="dead_letters_command", required=True, metavar="ACTION")
    replay = dead_sub.add_parser(
        "replay",
        help="按当前登记册重新解码并入库 / decode again against the current registry and store",
    )
    replay.add_argument("--reason", help="只重放此原因 / only dead letters of this reason")
    replay.add_argument(
        "--wait-s",
        type=float,
        default=120.0,
        help="等待接入进程完成的秒数 / seconds to wait for an ingest worker to finish it",
    )
    replay.add_argument(
        "--by",
        default=f"cli:{getpass.getuser()}",
        help="申请人 / who asks (default cli:<login name>)",
    )
    replay.set_defaults(func=cmd_dead_letters_replay)


def add_broker_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon broker-config`."""
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


def add_device_credentials(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon device-credentials`."""
    creds = sub.add_parser(
        "device-credentials",
        help="为尚无接入密码的设备发放密码（写入 CSV）/ issue missing device broker passwords",
    )
    creds.add_argument("--out", required=True, help="CSV 文件（新建，0600）/ new CSV file")
    creds.add_argument("--site", help="只此工地 / only this site's devices")
    creds.set_defaults(func=cmd_device_credentials)
