"""Sites (工地): each belongs to a region and an enterprise; every list is scoped to the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ConnDep, Id32
from api.query import Filters, Page, fetch_one, fetch_page, paging, update_row
from api.resources import CODE, SITES
from api.security import AdminDep, ReaderDep
from registry import inventory_store

router = APIRouter(prefix="/sites", tags=["sites"])


class SiteUpdate(BaseModel):
    """Changes to a site; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    region_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")
    enterprise: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class SiteCreate(SiteUpdate):
    """A new site."""

    code: str = Field(pattern=CODE, description="工地编号 / site code (MQTT topic segment)")
    name: str = Field(min_length=1, max_length=200)
    region_code: str = Field(pattern=r"^[0-9]{6}$", description="区县代码 / county code")
    enterprise: str = Field(default="", max_length=200, description="施工企业 / enterprise")
    address: str = Field(default="", max_length=500)


class SitePublic(BaseModel):
    """A site."""

    id: int
    code: str
    name: str
    region_code: str
    enterprise: str
    address: str
    latitude: float | None
    longitude: float | None
    created_at: datetime
    updated_at: datetime


class SitesPublic(BaseModel):
    """A page of sites."""

    data: list[SitePublic]
    count: int


@router.get("", response_model=SitesPublic, summary="工地列表 / list sites")
async def list_sites(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(SITES)],
    region: Annotated[
        str | None, Query(pattern=r"^[0-9]{2,6}$", description="区划代码前缀 / region prefix")
    ] = None,
    enterprise: Annotated[str | None, Query(max_length=200)] = None,
    code: Annotated[str | None, Query(pattern=CODE)] = None,
) -> SitesPublic:
    """Sites the caller may see, filtered by region prefix, enterprise or code."""
    filters = (
        Filters()
        .add("s.region_code LIKE %(region)s || '%%'", region=region)
        .add("s.enterprise = %(enterprise)s", enterprise=enterprise)
        .add("s.code = %(code)s", code=code)
    )
    rows, count = await fetch_page(conn, SITES, who, page, filters)
    return SitesPublic(data=[SitePublic.model_validate(r) for r in rows], count=count)


@router.get("/{site_id}", response_model=SitePublic, summary="工地详情 / one site")
async def get_site(conn: ConnDep, who: ReaderDep, site_id: Id32) -> SitePublic:
    """One site, if the caller may see it."""
    return SitePublic.model_validate(await fetch_one(conn, SITES, who, site_id))


@router.post("", response_model=SitePublic, status_code=201, summary="新增工地 / add a site")
async def create_site(conn: ConnDep, who: AdminDep, body: SiteCreate) -> SitePublic:
    """Register a site."""
    cur = await conn.execute(inventory_store.INSERT_SITE, body.model_dump())
    row = await cur.fetchone()
    assert row is not None
    return SitePublic.model_validate(await fetch_one(conn, SITES, who, row["id"]))


@router.patch("/{site_id}", response_model=SitePublic, summary="修改工地 / update a site")
async def update_site(conn: ConnDep, who: AdminDep, site_id: Id32, body: SiteUpdate) -> SitePublic:
    """Change a site's name, region, enterprise, address or position."""
    await fetch_one(conn, SITES, who, site_id, lock="s")
    await update_row(conn, "sites", site_id, body.model_dump(exclude_none=True))
    return SitePublic.model_validate(await fetch_one(conn, SITES, who, site_id))
