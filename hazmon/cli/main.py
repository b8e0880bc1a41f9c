"""The `hazmon` command line: the parser (commands in their modules) and the entry point, which
turns each kind of failure into its exit code and a message naming the cause."""

from __future__ import annotations

import argparse
import sys

from hazmon import logs
from hazmon.auth import AuthError
from hazmon.catalogue import CatalogueError
from hazmon.cli import registry, services, tokens
from hazmon.db import DatabaseError
from hazmon.settings import Settings

EXIT_DATABASE = 1
"""The database is unreachable (the message says how to start it)."""
EXIT_INPUT = 2
"""Invalid input or configuration (the message names it)."""


def _input_errors() -> tuple[type[Exception], ...]:
    """The errors that mean the user's input is wrong, not hazmon: exit 2 with their text."""
    from hazmon.cli.common import InputError
    from registry import InventoryError
    from registry.broker import BrokerConfigError
    from registry.inspections import InspectionError
    from rules import ProfileError

    return (
        InventoryError,
        CatalogueError,
        ProfileError,
        AuthError,
        BrokerConfigError,
        InputError,
        InspectionError,
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with bilingual help."""
    parser = argparse.ArgumentParser(
        prog="hazmon",
        description="危大工程监测预警后端 / monitoring backend for major-hazard construction works. "
        "设置见 HAZMON_* 环境变量 / settings come from HAZMON_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        registry.add_migrate,
        registry.add_registry,
        services.add_ingest,
        registry.add_dead_letters,
        registry.add_baseline,
        services.add_api,
        services.add_notify,
        services.add_simulate,
        services.add_run,
        services.add_demo,
        tokens.add_user,
        tokens.add_token,
        registry.add_broker_config,
        registry.add_device_credentials,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hazmon` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValueError as exc:
        print(f"配置错误 / bad configuration: {exc}", file=sys.stderr)
        return EXIT_INPUT
    logs.configure(settings.log_level)
    try:
        code: int = args.func(settings, args)
    except DatabaseError as exc:
        print(f"数据库错误 / database error: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except _input_errors() as exc:
        print(f"输入错误 / invalid input: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return code
