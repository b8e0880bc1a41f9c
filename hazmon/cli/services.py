"""The long-running commands: ingest, api, notify, run, and the simulator and demo around them."""

from __future__ import annotations

import argparse

from hazmon.cli.common import add_metrics_port, serve_metrics, stop_on_signals
from hazmon.settings import Settings

SWEEP_INTERVAL_S = 60
"""How often `hazmon run`'s sweep child looks at deadlines and inspection rounds (a minute: a
reminder a day ahead or an overdue mark is never more than a minute late)."""


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    """Run one ingest worker until SIGINT/SIGTERM."""
    from ingest import IngestMetrics, IngestService

    serve_metrics(settings, args)
    stop = stop_on_signals()
    IngestService(settings.ingest, IngestMetrics.create()).run(stop)
    return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the HTTP API until SIGINT/SIGTERM."""
    import uvicorn

    from api import create_app

    uvicorn.run(
        create_app(settings.api),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_config=None,
        access_log=False,
    )
    return 0


def cmd_notify(settings: Settings, args: argparse.Namespace) -> int:
    """Deliver alert notifications from the outbox to webhooks until SIGINT/SIGTERM."""
    from notify import Notifier

    serve_metrics(settings, args)
    Notifier.from_settings(settings.notify).run(stop_on_signals())
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
    """Run ingest, the API, the notifier and the deadline sweep as one supervised process group."""
    from hazmon.cli.supervisor import Supervisor

    supervisor = Supervisor(
        {
            "ingest": ["ingest"],
            "api": ["api"],
            "notify": ["notify"],
            "sweep": ["registry", "sweep", "--every-s", str(SWEEP_INTERVAL_S)],
        }
    )
    supervisor.install_signal_handlers()
    return supervisor.run()


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Load the demo inventory, start everything plus the simulator, print alerts as they open."""
    from hazmon.cli.demo import run_demo

    return run_demo(settings, speedup=args.speedup, linger_s=args.linger_s)


def add_ingest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon ingest`."""
    ing = sub.add_parser("ingest", help="接收 MQTT 遥测并入库 / ingest MQTT telemetry")
    add_metrics_port(ing)
    ing.set_defaults(func=cmd_ingest)


def add_api(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon api`."""
    api = sub.add_parser("api", help="HTTP 接口 / serve the HTTP API")
    api.add_argument("--host", help="监听地址 / bind address (default HAZMON_API_HOST)")
    api.add_argument("--port", type=int, help="端口 / port (default HAZMON_API_PORT)")
    api.set_defaults(func=cmd_api)


def add_notify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon notify`."""
    notify = sub.add_parser("notify", help="推送报警到 Webhook / deliver alerts to webhooks")
    add_metrics_port(notify)
    notify.set_defaults(func=cmd_notify)


def add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon simulate`."""
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


def add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon run`."""
    sub.add_parser(
        "run",
        help="一并运行接入、接口、推送与期限检查 / run ingest, the API, the notifier and the "
        "deadline sweep, supervised",
    ).set_defaults(func=cmd_run)


def add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hazmon demo`."""
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
