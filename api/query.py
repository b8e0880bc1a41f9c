"""Reading resources the same way everywhere: scoped to the caller, filtered, ordered, paged.

Every read of tenant data goes through `fetch_page` or `fetch_one`, which add the caller's
scope (`scope_condition`) to the WHERE clause, so a route cannot forget it: an enterprise asking
for another enterprise's site by id gets 404, exactly as for an id that does not exist.
List routes share one query convention: `limit` (1-500), `offset`, and `sort` naming one of the
resource's sortable fields, `-` in front for descending; the answer is `{data, count}` with
`count` the number of matches before paging.
"""

# No `from __future__ import annotations` here: `paging` builds its parameter annotations from
# a closure variable, which FastAPI can only see if annotations are evaluated at definition.
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, LiteralString

from fastapi import Depends, HTTPException, Query
from psycopg import AsyncConnection, sql

from hazmon.auth import Principal

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000


@dataclass(frozen=True, slots=True)
class Resource:
    """How one resource is read.

    Attributes:
        name: singular name for messages ("site").
        columns: the SELECT list.
        source: the FROM clause; tenant data joins `sites s`.
        id_column: the column `fetch_one` matches.
        sortable: public sort field -> column.
        default_sort: the sort when the client names none.
        tenant: whether rows belong to a site and are scoped by the caller's role; resources
            that are not (regions, tokens, webhooks, dead letters) are gated by role alone.
        group_by: for aggregate resources read with `fetch_groups`, the GROUP BY list.
    """

    name: str
    columns: LiteralString
    source: LiteralString
    id_column: LiteralString
    sortable: Mapping[str, LiteralString]
    default_sort: str
    tenant: bool = True
    group_by: LiteralString = ""

    @property
    def sort_pattern(self) -> str:
        """The regular expression a `sort` parameter must match."""
        return f"^-?({'|'.join(self.sortable)})$"


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of a list, in which order."""

    limit: int
    offset: int
    sort: str


def paging(resource: Resource) -> Any:
    """The `limit`/`offset`/`sort` query parameters of a list route over `resource`."""

    def page(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="每页条数 / page size")] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="跳过 / rows to skip")] = 0,
        sort: Annotated[
            str,
            Query(
                pattern=resource.sort_pattern,
                description=f"排序 / sort by one of {', '.join(resource.sortable)}; "
                "prefix '-' for descending",
            ),
        ] = resource.default_sort,
    ) -> Page:
        return Page(limit, offset, sort)

    return Depends(page)


class Filters:
    """WHERE conditions with named parameters; a condition whose values are all None is skipped."""

    def __init__(self) -> None:
        self._parts: list[sql.Composable] = []
        self.params: dict[str, Any] = {}

    def add(self, condition: LiteralString, **params: Any) -> "Filters":
        """Add `condition` (using `%(name)s` placeholders) unless every value is None."""
        if params and all(value is None for value in params.values()):
            return self
        self._parts.append(sql.SQL(condition))
        self.params.update(params)
        return self

    def where(self) -> sql.Composable:
        """The conjunction of the conditions, `TRUE` when there are none."""
        if not self._parts:
            return sql.SQL("TRUE")
        return sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in self._parts)


def scope_condition(principal: Principal) -> tuple[LiteralString, dict[str, Any]]:
    """The condition on `sites s` that limits tenant rows to what `principal` may see."""
    if principal.role == "admin":
        return "TRUE", {}
    if principal.role in ("regulator", "inspector"):
        return "s.region_code LIKE %(scope_region)s", {
            "scope_region": principal.region_prefix + "%"
        }
    if principal.role == "enterprise":
        if principal.site_id is not None:
            return "s.id = %(scope_site)s", {"scope_site": principal.site_id}
        return "s.enterprise = %(scope_enterprise)s", {"scope_enterprise": principal.enterprise}
    return "FALSE", {}


def _scoped(resource: Resource, principal: Principal, filters: Filters) -> Filters:
    if resource.tenant:
        condition, params = scope_condition(principal)
        filters.add(condition, **params)
    return filters


def _order(resource: Resource, sort: str) -> sql.Composable:
    descending = sort.startswith("-")
    column = resource.sortable[sort.lstrip("-")]
    direction = sql.SQL("DESC") if descending else sql.SQL("ASC")
    return sql.SQL("{} {} NULLS LAST, {} {}").format(
        sql.SQL(column), direction, sql.SQL(resource.id_column), direction
    )


async def fetch_page(
    conn: AsyncConnection[dict[str, Any]],
    resource: Resource,
    principal: Principal,
    page: Page,
    filters: Filters,
) -> tuple[list[dict[str, Any]], int]:
    """One page of `resource` visible to `principal` and matching `filters`, and the total."""
    filters = _scoped(resource, principal, filters)
    where = filters.where()
    count_cur = await conn.execute(
        sql.SQL("SELECT count(*) AS n FROM {} WHERE {}").format(sql.SQL(resource.source), where),
        filters.params,
    )
    total = await count_cur.fetchone()
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %(limit)s OFFSET %(offset)s").format(
            sql.SQL(resource.columns), sql.SQL(resource.source), where, _order(resource, page.sort)
        ),
        {**filters.params, "limit": page.limit, "offset": page.offset},
    )
    return await cur.fetchall(), int(total["n"]) if total else 0


async def fetch_row(
    conn: AsyncConnection[dict[str, Any]],
    resource: Resource,
    principal: Principal,
    filters: Filters,
    *,
    lock: LiteralString | None = None,
) -> dict[str, Any] | None:
    """The first row of `resource` visible to `principal` and matching `filters` (or None).

    With aggregate `columns` this is one row of aggregates over the visible rows.

    Args:
        lock: a table alias to lock `FOR UPDATE` (for read-modify-write routes).
    """
    filters = _scoped(resource, principal, filters)
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.SQL(resource.columns), sql.SQL(resource.source), filters.where()
    )
    if lock:
        query = sql.SQL("{} FOR UPDATE OF {}").format(query, sql.Identifier(lock))
    cur = await conn.execute(query, filters.params)
    return await cur.fetchone()


async def fetch_groups(
    conn: AsyncConnection[dict[str, Any]],
    resource: Resource,
    principal: Principal,
    filters: Filters,
    **params: Any,
) -> list[dict[str, Any]]:
    """Rows of an aggregate `resource` over the rows visible to `principal`, one per group.

    Args:
        params: values for placeholders in the resource's columns or source.
    """
    filters = _scoped(resource, principal, filters)
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE {} GROUP BY {} ORDER BY {}").format(
            sql.SQL(resource.columns),
            sql.SQL(resource.source),
            filters.where(),
            sql.SQL(resource.group_by),
            sql.SQL(resource.group_by),
        ),
        {**filters.params, **params},
    )
    return await cur.fetchall()


async def fetch_one(
    conn: AsyncConnection[dict[str, Any]],
    resource: Resource,
    principal: Principal,
    key: object,
    *,
    lock: LiteralString | None = None,
) -> dict[str, Any]:
    """The row of `resource` with id `key` if `principal` may see it, else 404."""
    filters = Filters().add(f"{resource.id_column} = %(key)s", key=key)
    row = await fetch_row(conn, resource, principal, filters, lock=lock)
    if row is None:
        raise HTTPException(404, f"no {resource.name} {key}")
    return row


async def update_row(
    conn: AsyncConnection[dict[str, Any]],
    table: LiteralString,
    key: object,
    fields: Mapping[str, Any],
    *,
    touch: bool = True,
) -> None:
    """Set `fields` (column -> value) on the row of `table` with id `key`.

    Args:
        touch: also set `updated_at = now()` (tables that have the column).
    """
    assignments: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
        for column in fields
    ]
    if touch:
        assignments.append(sql.SQL("updated_at = now()"))
    if not assignments:
        return
    await conn.execute(
        sql.SQL("UPDATE {} SET {} WHERE id = %(key)s").format(
            sql.Identifier(table), sql.SQL(", ").join(assignments)
        ),
        {**fields, "key": key},
    )
