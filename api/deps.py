"""Dependencies and parameter types shared by the routes.

Ids are read through the types below and nowhere else, so a route cannot forget a bound:

- `Id32` / `Id64` (path) and `QueryId32` (query): an id in a URL is canonical decimal digits,
  `^[1-9][0-9]*$`, within its column's range. pydantic's lax `int` would also read `20.0`,
  `1_0`, `+1`, ` 1` and `01` as ids: one row had many URLs, and `DELETE /tokens/20.0` revoked
  token 20.
- `BodyId32` / `BodyId64`: an id in a JSON body is a JSON integer; `true`, `1.0` and `"1"` are
  refused.

Each refusal is a 422 whose `errors[].loc` names the parameter or field (api/problems.py).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError

from hazmon.settings import Settings

SERIAL_MAX = 2_147_483_647
"""The largest value of a `serial` (int4) column."""
BIGSERIAL_MAX = 9_223_372_036_854_775_807
"""The largest value of a `bigserial` (int8) column."""
_ID_TEXT = re.compile(r"[1-9][0-9]*")  # not `\d`: that matches "١" and "１" too


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


def id_text(value: object) -> object:
    """Let through an id written in a URL only as canonical decimal digits.

    Runs before pydantic's `int` parsing, which then reads the digits and checks the range
    (`ge`/`le` of the parameter). None passes: an optional query parameter left out.

    Raises:
        PydanticCustomError: `id_format`, for anything but `^[1-9][0-9]*$` (ASCII digits): a
            sign, space, leading zero, `_` separator, decimal point, exponent or other base.
    """
    if value is None or (isinstance(value, str) and _ID_TEXT.fullmatch(value)):
        return value
    raise PydanticCustomError(
        "id_format",
        "an id is a whole number from 1 in plain decimal digits: no sign, space, leading zero, "
        "separator, decimal point or exponent",
    )


_Serial = Annotated[int, Field(ge=1, le=SERIAL_MAX)]
_BigSerial = Annotated[int, Field(ge=1, le=BIGSERIAL_MAX)]
# The range sits on the inner `int`, under the text check: the OpenAPI schema stays an integer
# with minimum and maximum (constraints outside a before-validator would be opaque to it).
Id32 = Annotated[_Serial, BeforeValidator(id_text), Path(description="编号 / id")]
"""A path id of a `serial` column: out-of-range ids are refused as 422, never sent to SQL."""
Id64 = Annotated[_BigSerial, BeforeValidator(id_text), Path(description="编号 / id")]
"""A path id of a `bigserial` column."""
QueryId32 = Annotated[_Serial | None, BeforeValidator(id_text), Query()]
"""An optional query filter on a `serial` id (default it to None)."""
BodyId32 = Annotated[_Serial, Strict()]
"""A JSON body's reference to a `serial` id: a JSON integer, not `true`, `1.0` or `"1"`."""
BodyId64 = Annotated[_BigSerial, Strict()]
"""A JSON body's reference to a `bigserial` id."""


def get_settings(request: Request) -> Settings:
    """The application's settings."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
