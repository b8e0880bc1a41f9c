"""Dependencies shared by the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg.rows import dict_row


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection[dict[str, Any]]]:
    """A pooled connection returning rows as dicts, for the duration of one request."""
    async with request.app.state.pool.connection() as conn:
        conn.row_factory = dict_row
        yield conn


ConnDep = Annotated[AsyncConnection[dict[str, Any]], Depends(get_conn)]
