"""Regions: the administrative divisions (GB/T 2260) that scope regulators and inspectors.

Division codes and names are public reference data, so every human role may read them all;
only an admin adds them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ConnDep
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.security import AdminDep, ReaderDep
from registry import inventory_store

router = APIRouter(prefix="/regions", tags=["regions"])

REGION_CODE = r"^[0-9]{6}$"
REGIONS = Resource(
    name="region",
    columns="r.code, r.name, r.parent_code",
    source="regions r",
    id_column="r.code",
    sortable={"code": "r.code", "name": "r.name"},
    default_sort="code",
    tenant=False,
)


class RegionCreate(BaseModel):
    """A new administrative division."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=REGION_CODE, description="六位区划代码 / six-digit division code")
    name: str = Field(min_length=1, max_length=100)
    parent_code: str | None = Field(default=None, pattern=REGION_CODE)


class RegionPublic(BaseModel):
    """An administrative division."""

    code: str
    name: str
    parent_code: str | None


class RegionsPublic(BaseModel):
    """A page of regions."""

    data: list[RegionPublic]
    count: int


@router.get("", response_model=RegionsPublic, summary="行政区划列表 / list regions")
async def list_regions(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(REGIONS)],
    parent_code: Annotated[str | None, Query(pattern=REGION_CODE)] = None,
    code_prefix: Annotated[str | None, Query(pattern=r"^[0-9]{1,6}$")] = None,
) -> RegionsPublic:
    """Regions, optionally the children of one, or those whose code starts with a prefix."""
    filters = (
        Filters()
        .add("r.parent_code = %(parent_code)s", parent_code=parent_code)
        .add("r.code LIKE %(code_prefix)s || '%%'", code_prefix=code_prefix)
    )
    rows, count = await fetch_page(conn, REGIONS, who, page, filters)
    return RegionsPublic(data=[RegionPublic.model_validate(r) for r in rows], count=count)


@router.get("/{code}", response_model=RegionPublic, summary="行政区划 / one region")
async def get_region(
    conn: ConnDep, who: ReaderDep, code: Annotated[str, Path(pattern=REGION_CODE)]
) -> RegionPublic:
    """One region by its code."""
    return RegionPublic.model_validate(await fetch_one(conn, REGIONS, who, code))


@router.post(
    "", response_model=RegionPublic, status_code=201, summary="新增行政区划 / add a region"
)
async def create_region(conn: ConnDep, who: AdminDep, body: RegionCreate) -> RegionPublic:
    """Add a division; its parent, if given, must exist."""
    cur = await conn.execute(inventory_store.INSERT_REGION, body.model_dump())
    row = await cur.fetchone()
    assert row is not None
    return RegionPublic.model_validate(row)
