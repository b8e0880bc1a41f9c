"""What every command shares: signals, the metrics port."""

from __future__ import annotations

import argparse
import signal
import threading

from hazmon.settings import Settings


class InputError(ValueError):
    """A command's input is invalid: the CLI exits 2 with this message."""


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: long-running commands stop when it is set."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve_metrics(settings: Settings, args: argparse.Namespace) -> None:
    """Expose this process's Prometheus metrics on `--metrics-port`, if one was given."""
    from prometheus_client import start_http_server

    if args.metrics_port:
        start_http_server(args.metrics_port, addr=settings.api_host)


def add_metrics_port(parser: argparse.ArgumentParser) -> None:
    """The `--metrics-port` option of long-running services."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="在此端口提供 Prometheus 指标 / serve Prometheus metrics on this port (0: off)",
    )
