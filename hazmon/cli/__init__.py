"""The `hazmon` command line (docs/architecture.md, CLI): one module per group of commands."""

from hazmon.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
