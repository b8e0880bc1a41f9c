"""Dependencies and parameter types shared by the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from hazmon.settings import Settings


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection[dict[str, Any]]]:
    """A pooled connection returning rows as dicts; its transaction is the request's.

    Leaving the block commits (or rolls back on an exception), so the dependency is
    function-scoped: that happens before the response is sent, never after, and a client that
    got a 2xx can rely on the write being committed.
    """
    async with request.app.state.pool.connection() as conn:
        conn.row_factory = dict_row
        yield conn


ConnDep = Annotated[AsyncConnection[dict[str, Any]], Depends(get_conn, scope="function")]


Id32 = Annotated[int, Path(ge=1, le=2_147_483_647, description="编号 / id")]
"""A path id of a `serial` column: out-of-range ids are refused as 422, never sent to SQL."""
Id64 = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807, description="编号 / id")]
"""A path id of a `bigserial` column."""


def get_settings(request: Request) -> Settings:
    """The application's settings."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
