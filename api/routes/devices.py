"""Devices (监测设备): a work's gateways, their series, status and MQTT broker credentials.

A device's broker account is `{site_code}.{device_code}`; its password is generated here,
returned once (on creation or rotation) and stored only as Mosquitto's PBKDF2 hash, from which
`hazmon broker-config` writes the broker's password file and ACL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from api.deps import BodyId32, ConnDep, Id32, QueryId32
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.resources import CODE, WORKS
from api.security import AdminDep, ReaderDep
from hazmon.catalogue import CatalogueError, hazard_kind
from registry import inventory_store
from registry.broker import (
    UPSERT_CREDENTIALS_SQL,
    device_username,
    mosquitto_hash,
    new_password,
)

router = APIRouter(prefix="/devices", tags=["devices"])

DEVICES = Resource(
    name="device",
    columns="d.id, d.site_id, s.code AS site_code, d.work_id, d.code, d.name, "
    "d.sampling_period_s, c.username AS mqtt_username, ds.online, "
    "ds.changed_at AS status_changed_at, d.created_at, d.updated_at",
    source="devices d JOIN sites s ON s.id = d.site_id "
    "LEFT JOIN device_credentials c ON c.device_id = d.id "
    "LEFT JOIN device_status ds ON ds.device_id = d.id",
    id_column="d.id",
    sortable={"id": "d.id", "code": "d.code", "site_id": "d.site_id"},
    default_sort="id",
)


class DeviceCreate(BaseModel):
    """A new device on a work."""

    model_config = ConfigDict(extra="forbid")

    work_id: BodyId32
    code: str = Field(pattern=CODE, description="设备编号 / device code (MQTT topic segment)")
    name: str = Field(default="", max_length=200)
    sampling_period_s: float = Field(default=60.0, gt=0, le=86_400)
    metrics: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=64,
        description="测量项 / metrics it sends; default: all of the work's hazard kind",
    )


class DevicePublic(BaseModel):
    """A device."""

    id: int
    site_id: int
    site_code: str
    work_id: int
    code: str
    name: str
    sampling_period_s: float
    mqtt_username: str | None
    online: bool | None
    status_changed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DevicesPublic(BaseModel):
    """A page of devices."""

    data: list[DevicePublic]
    count: int


class DeviceCredentials(BaseModel):
    """A device's MQTT account; the password is shown this once and stored only hashed."""

    username: str
    password: str


class DeviceCreated(DevicePublic):
    """A new device and its broker credentials."""

    credentials: DeviceCredentials


async def _issue_credentials(
    conn: AsyncConnection[dict[str, Any]], device: dict[str, Any]
) -> DeviceCredentials:
    credentials = DeviceCredentials(
        username=device_username(device["site_code"], device["code"]), password=new_password()
    )
    await conn.execute(
        UPSERT_CREDENTIALS_SQL,
        {
            "device_id": device["id"],
            "username": credentials.username,
            "password_hash": await run_in_threadpool(mosquitto_hash, credentials.password),
        },
    )
    return credentials


@router.get("", response_model=DevicesPublic, summary="设备列表 / list devices")
async def list_devices(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(DEVICES)],
    site_id: QueryId32 = None,
    work_id: QueryId32 = None,
    online: bool | None = None,
) -> DevicesPublic:
    """Devices on the sites the caller may see."""
    filters = (
        Filters()
        .add("d.site_id = %(site_id)s", site_id=site_id)
        .add("d.work_id = %(work_id)s", work_id=work_id)
        .add("coalesce(ds.online, false) = %(online)s", online=online)
    )
    rows, count = await fetch_page(conn, DEVICES, who, page, filters)
    return DevicesPublic(data=[DevicePublic.model_validate(r) for r in rows], count=count)


@router.get("/{device_id}", response_model=DevicePublic, summary="设备详情 / one device")
async def get_device(conn: ConnDep, who: ReaderDep, device_id: Id32) -> DevicePublic:
    """One device, if the caller may see its site."""
    return DevicePublic.model_validate(await fetch_one(conn, DEVICES, who, device_id))


@router.post("", response_model=DeviceCreated, status_code=201, summary="新增设备 / add a device")
async def create_device(conn: ConnDep, who: AdminDep, body: DeviceCreate) -> DeviceCreated:
    """Register a device, its series and its broker account (the password is shown once)."""
    work = await fetch_one(conn, WORKS, who, body.work_id)
    kind = hazard_kind(work["hazard_kind"])
    metrics = body.metrics if body.metrics is not None else list(kind.metrics)
    unknown = sorted(set(metrics) - set(kind.metrics))
    if unknown:
        raise CatalogueError(
            f"metrics {unknown} are not {kind.code} metrics (known: {', '.join(kind.metrics)})"
        )
    cur = await conn.execute(
        inventory_store.INSERT_DEVICE,
        {
            "site_id": work["site_id"],
            "work_id": work["id"],
            "code": body.code,
            "name": body.name,
            "sampling_period_s": body.sampling_period_s,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    async with conn.cursor() as series:
        await series.executemany(
            inventory_store.ADD_SERIES,
            [{"device_id": row["id"], "metric": metric} for metric in metrics],
        )
    device = await fetch_one(conn, DEVICES, who, row["id"])
    credentials = await _issue_credentials(conn, device)
    return DeviceCreated.model_validate(
        {**device, "mqtt_username": credentials.username, "credentials": credentials}
    )


@router.post(
    "/{device_id}/credentials",
    response_model=DeviceCredentials,
    summary="重置设备接入密码 / issue new broker credentials",
)
async def rotate_credentials(conn: ConnDep, who: AdminDep, device_id: Id32) -> DeviceCredentials:
    """Replace a device's MQTT password (shown once); run `hazmon broker-config` afterwards."""
    device = await fetch_one(conn, DEVICES, who, device_id, lock="d")
    return await _issue_credentials(conn, device)
