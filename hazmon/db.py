"""The one module that opens PostgreSQL connections: URLs, database creation, connection pools."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool


class DatabaseError(Exception):
    """The database is unreachable or refused an operation; the message says what to do."""


def database_name(url: str) -> str:
    """Return the database name in a postgresql:// URL."""
    name = urlsplit(url).path.lstrip("/")
    if not name:
        raise DatabaseError(f"database URL {redact(url)} names no database")
    return name


def with_database(url: str, name: str) -> str:
    """Return `url` pointing at database `name` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def redact(url: str) -> str:
    """Return the URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[Any, ...]]:
    """Open one connection; translate failures into a DatabaseError that says how to fix them."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {redact(url)}: {str(exc).strip()}. "
            "Start the local services with `scripts/services.sh up` (or `make services`), "
            "or point HAZMON_DATABASE_URL at a reachable server."
        ) from None


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist; return True if it was created."""
    name = database_name(url)
    with connect(with_database(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(url: str) -> None:
    """Drop the database named in `url`, disconnecting its sessions first (tests use this)."""
    name = database_name(url)
    with connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def async_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 8,
    name: str = "hazmon-api",
    statement_timeout_s: float | None = None,
) -> AsyncConnectionPool:
    """A closed asynchronous pool; open it in the application's lifespan.

    Args:
        statement_timeout_s: cancel any statement running longer (None: the server's default).
    """
    kwargs: dict[str, Any] = {}
    if statement_timeout_s is not None:
        kwargs["options"] = f"-c statement_timeout={round(statement_timeout_s * 1000)}"
    return AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, name=name, timeout=30, kwargs=kwargs
    )
