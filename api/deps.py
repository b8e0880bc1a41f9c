"""Dependencies and parameter types shared by the routes.

Ids and free-form JSON are read through the types below and nowhere else, so a route cannot
forget a bound:

- `Id32` / `Id64` (path) and `QueryId32` / `QueryId64` (query): an id in a URL is canonical decimal digits,
  `^[1-9][0-9]*$`, within its column's range. pydantic's lax `int` would also read `20.0`,
  `1_0`, `+1`, ` 1` and `01` as ids: one row had many URLs, and `DELETE /tokens/20.0` revoked
  token 20.
- `BodyId32` / `BodyId64`: an id in a JSON body is a JSON integer; `true`, `1.0` and `"1"` are
  refused.
- `BoundedJson`: a free-form JSON object (design values, threshold overrides) at most
  `MAX_JSON_DEPTH` levels deep and `MAX_JSON_BYTES` long, checked without recursion.

Each refusal is a 422 whose `errors[].loc` names the parameter or field (api/problems.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import AfterValidator, BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError

from hazmon.settings import ApiSettings

SERIAL_MAX = 2_147_483_647
"""The largest value of a `serial` (int4) column."""
BIGSERIAL_MAX = 9_223_372_036_854_775_807
"""The largest value of a `bigserial` (int8) column."""
MAX_JSON_DEPTH = 8
"""Nesting levels of a free-form JSON field, its own object being level 1. Design values are
flat (1) and overrides two deep (`{"levels": {"red": 0.95}}`); 8 leaves room for structured
values (a load curve as `[[radius, load], ...]` is 3) and stops far below the 255 levels where
pydantic's serializer gives up, or the ~1000 where Python's `json` does."""
MAX_JSON_BYTES = 16 * 1024
"""Length of a free-form JSON field as compact UTF-8 JSON: a few hundred bytes in practice; 16 KiB
holds a rated load curve of several hundred points, and keeps every `thresholds` and `works` row
small enough that the rule engine loads thousands of them at start."""

_ID_TEXT = re.compile(r"[1-9][0-9]*")  # not `\d`: that matches "١" and "１" too
_T = TypeVar("_T")


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
QueryId64 = Annotated[_BigSerial | None, BeforeValidator(id_text), Query()]
"""An optional query filter on a `bigserial` id (default it to None)."""
BodyId32 = Annotated[_Serial, Strict()]
"""A JSON body's reference to a `serial` id: a JSON integer, not `true`, `1.0` or `"1"`."""
BodyId64 = Annotated[_BigSerial, Strict()]
"""A JSON body's reference to a `bigserial` id."""


def json_bounds(value: _T) -> _T:
    """Return `value` if it is at most `MAX_JSON_DEPTH` deep and `MAX_JSON_BYTES` long.

    The depth walk keeps its own stack and stops at the first container too deep, so a value
    100 000 levels deep costs `MAX_JSON_DEPTH` steps and never a RecursionError; only then is
    the value serialized (which does recurse) to measure it.

    Raises:
        PydanticCustomError: `json_too_deep`; `json_not_finite` (NaN or Infinity, which Python's
            decoder reads but JSON and PostgreSQL's `jsonb` have not); `json_invalid_text` (a
            lone surrogate, which has no UTF-8); `json_too_large`.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise PydanticCustomError(
                "json_too_deep",
                "JSON nested more than {max_depth} levels deep",
                {"max_depth": MAX_JSON_DEPTH},
            )
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise PydanticCustomError(
            "json_not_finite", "JSON numbers must be finite, not NaN or Infinity"
        ) from None
    try:
        size = len(text.encode())
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"), refused in every `str` field too
        raise PydanticCustomError(
            "json_invalid_text", "JSON text must be valid Unicode, without lone surrogates"
        ) from None
    if size > MAX_JSON_BYTES:
        raise PydanticCustomError(
            "json_too_large",
            "JSON of {size} bytes, more than {max_bytes}",
            {"size": size, "max_bytes": MAX_JSON_BYTES},
        )
    return value


BoundedJson = Annotated[dict[str, Any], AfterValidator(json_bounds)]
"""A free-form JSON object, bounded by `MAX_JSON_DEPTH` and `MAX_JSON_BYTES`."""


def client(request: Request) -> str | None:
    """The caller's address as the server saw it, for the audit trail."""
    return request.client.host if request.client else None


def get_settings(request: Request) -> ApiSettings:
    """The API's settings."""
    settings: ApiSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
