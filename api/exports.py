"""Downloads of the two lists and the listed-supervision notice (`registry.lists`), scoped.

The rows are read on the request's connection, within the caller's scope and bounded
(`registry.lists.MAX_ROWS`; more is a 422 asking to narrow the filters), then streamed out:
CSV row by row, XLSX from a spooled temporary file, both after the request's transaction ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import HTTPException, Query
from fastapi.responses import StreamingResponse
from psycopg import AsyncConnection
from pydantic import AwareDatetime

from api.deps import QueryId32
from api.query import scope_condition
from api.resources import HAZARD_KINDS_PATTERN
from hazmon.auth import Principal
from hazmon.vocabulary import HazardLevel, HazardState
from registry import lists

FormatQuery = Annotated[
    Literal["csv", "xlsx"], Query(description="csv（UTF-8 带 BOM，Excel 可直接打开）或 xlsx")
]
CHUNK_BYTES = 64 * 1024
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "清单文件 / the list as a file",
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            lists.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
"""The OpenAPI answer of an export route: a CSV or an XLSX file."""


def list_filters(
    region: Annotated[
        str | None, Query(pattern=r"^([0-9]{2}){1,3}$", description="区划前缀 / region prefix")
    ] = None,
    site_id: QueryId32 = None,
    kind: Annotated[
        str | None, Query(pattern=HAZARD_KINDS_PATTERN, description="危大工程类别 / hazard kind")
    ] = None,
    level: HazardLevel | None = None,
    state: HazardState | None = None,
    start: Annotated[AwareDatetime | None, Query(description="期间起（含）/ from")] = None,
    end: Annotated[AwareDatetime | None, Query(description="期间止（不含）/ until")] = None,
) -> lists.ListFilters:
    """The lists' filters: region, site, hazard kind, level, state and the period `[start, end)`
    (of the finding for hazards, of the assignment for rectifications)."""
    return lists.ListFilters(
        region=region, site_id=site_id, kind=kind, level=level, state=state, start=start, end=end
    )


def _file_chunks(f: IO[bytes]) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


async def export(
    conn: AsyncConnection[dict[str, Any]],
    who: Principal,
    spec: lists.ListSpec,
    filters: lists.ListFilters,
    fmt: Literal["csv", "xlsx"],
) -> StreamingResponse:
    """The list `spec` as a download for `who`."""
    try:
        rows = await lists.fetch_list(conn, spec, filters, scope_condition(who))
    except lists.ListTooLongError as exc:
        raise HTTPException(422, str(exc)) from None
    name = lists.file_name(spec, fmt, datetime.now(UTC))
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    if fmt == "csv":
        return StreamingResponse(
            lists.csv_chunks(spec, rows), media_type=lists.CSV_MEDIA_TYPE, headers=headers
        )
    out = await asyncio.to_thread(lists.xlsx_file, spec, rows)
    return StreamingResponse(_file_chunks(out), media_type=lists.XLSX_MEDIA_TYPE, headers=headers)
