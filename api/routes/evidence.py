"""Evidence (佐证材料): photos and PDFs uploaded to a hazard, a round of rectification or an
inspection record, and served back within the caller's scope.

An upload is the file itself as the request body (`Content-Type: image/jpeg`, `image/png`,
`image/webp`, `image/heic`, `application/pdf`, or `application/octet-stream` to let the content
decide), with `filename` and `note` as query parameters. It is streamed to disk
(`registry.evidence`): over `HAZMON_EVIDENCE_MAX_BYTES` it is refused with 413, a type that is
not allowed or content whose magic bytes do not match with 415, each as a problem saying why.
Files are stored once per content (SHA-256) under `HAZMON_EVIDENCE_DIR`. Another tenant's file
is 404, like one that does not exist.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from psycopg import AsyncConnection
from pydantic import BaseModel

from api.deps import ConnDep, Id64, QueryId64, SettingsDep, client
from api.problems import problem_responses
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.resources import HAZARDS, INSPECTIONS, RECTIFICATIONS
from api.security import ReaderDep
from hazmon.auth import Principal
from hazmon.settings import ApiSettings
from registry import evidence as files
from registry.lifecycle import Actor

router = APIRouter(tags=["evidence"])

UPLOAD_PATH = re.compile(r"/(hazards|rectifications|inspections)/[^/]+/evidence")
"""The upload routes, which the body limit lets take up to HAZMON_EVIDENCE_MAX_BYTES."""
EVIDENCE = Resource(
    name="evidence",
    columns="e.id, e.sha256, e.size_bytes, e.media_type, e.filename, e.note, e.site_id, "
    "s.code AS site_code, e.hazard_id, e.rectification_id, e.inspection_id, e.uploaded_by, "
    "e.uploaded_by_user, e.uploaded_at",
    source="evidence e JOIN sites s ON s.id = e.site_id",
    id_column="e.id",
    sortable={"id": "e.id", "uploaded_at": "e.uploaded_at"},
    default_sort="id",
)
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD = {
    "requestBody": {
        "required": True,
        "description": "文件本身 / the file itself as the body",
        "content": {media: _BINARY for media in (*files.MEDIA_TYPES, files.ANY_TYPE)},
    }
}
_UPLOAD_ERRORS = problem_responses(413, 415, 422)
FilenameQuery = Annotated[
    str, Query(max_length=200, description="文件名 / the file's name (shown on download)")
]
NoteQuery = Annotated[str, Query(max_length=500, description="说明 / what it shows")]


class EvidencePublic(BaseModel):
    """An evidence file's record."""

    id: int
    sha256: str
    size_bytes: int
    media_type: str
    filename: str
    note: str
    site_id: int
    site_code: str
    hazard_id: int | None
    rectification_id: int | None
    inspection_id: int | None
    uploaded_by: str
    uploaded_by_user: int | None
    uploaded_at: datetime


class EvidenceListPublic(BaseModel):
    """A page of evidence records."""

    data: list[EvidencePublic]
    count: int


def _files(settings: ApiSettings) -> files.EvidenceFiles:
    return files.EvidenceFiles(settings.evidence_dir, settings.evidence_max_bytes)


async def _upload(
    conn: AsyncConnection[dict[str, Any]],
    request: Request,
    who: Principal,
    settings: ApiSettings,
    *,
    site_id: int,
    filename: str,
    note: str,
    hazard: dict[str, Any] | None = None,
    rectification_id: int | None = None,
    inspection_id: int | None = None,
) -> EvidencePublic:
    try:
        stored = await _files(settings).receive(
            request.stream(), request.headers.get("content-type")
        )
    except files.EvidenceError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    evidence_id = await files.record(
        conn,
        stored,
        site_id=site_id,
        actor=Actor(who.actor, who.user_id, who.role),
        filename=filename,
        note=note,
        hazard=hazard,
        rectification_id=rectification_id,
        inspection_id=inspection_id,
        client_addr=client(request),
    )
    return EvidencePublic.model_validate(await fetch_one(conn, EVIDENCE, who, evidence_id))


@router.post(
    "/hazards/{hazard_id}/evidence",
    response_model=EvidencePublic,
    status_code=201,
    summary="上传隐患佐证 / upload evidence of a hazard",
    openapi_extra=_UPLOAD,
    responses=_UPLOAD_ERRORS,
)
async def upload_hazard_evidence(
    conn: ConnDep,
    who: ReaderDep,
    settings: SettingsDep,
    request: Request,
    hazard_id: Id64,
    filename: FilenameQuery = "",
    note: NoteQuery = "",
) -> EvidencePublic:
    """Attach a photo or PDF to a hazard; an `evidence` event on its audit trail."""
    hazard = await fetch_one(conn, HAZARDS, who, hazard_id, lock="h")
    return await _upload(
        conn, request, who, settings, site_id=hazard["site_id"], filename=filename, note=note,
        hazard=hazard,
    )  # fmt: skip


@router.post(
    "/rectifications/{rectification_id}/evidence",
    response_model=EvidencePublic,
    status_code=201,
    summary="上传整改佐证 / upload evidence of a rectification",
    openapi_extra=_UPLOAD,
    responses=_UPLOAD_ERRORS,
)
async def upload_rectification_evidence(
    conn: ConnDep,
    who: ReaderDep,
    settings: SettingsDep,
    request: Request,
    rectification_id: Id64,
    filename: FilenameQuery = "",
    note: NoteQuery = "",
) -> EvidencePublic:
    """Attach a photo or PDF (the fix done, an acceptance report) to a round of rectification;
    an `evidence` event on its hazard's audit trail."""
    round_ = await fetch_one(conn, RECTIFICATIONS, who, rectification_id)
    hazard = await fetch_one(conn, HAZARDS, who, round_["hazard_id"], lock="h")
    return await _upload(
        conn, request, who, settings, site_id=hazard["site_id"], filename=filename, note=note,
        hazard=hazard, rectification_id=rectification_id,
    )  # fmt: skip


@router.post(
    "/inspections/{inspection_id}/evidence",
    response_model=EvidencePublic,
    status_code=201,
    summary="上传巡查佐证 / upload evidence of an inspection",
    openapi_extra=_UPLOAD,
    responses=_UPLOAD_ERRORS,
)
async def upload_inspection_evidence(
    conn: ConnDep,
    who: ReaderDep,
    settings: SettingsDep,
    request: Request,
    inspection_id: Id64,
    filename: FilenameQuery = "",
    note: NoteQuery = "",
) -> EvidencePublic:
    """Attach a photo or PDF to an inspection record; an `audit_log` line."""
    record = await fetch_one(conn, INSPECTIONS, who, inspection_id)
    return await _upload(
        conn, request, who, settings, site_id=record["site_id"], filename=filename, note=note,
        inspection_id=inspection_id,
    )  # fmt: skip


@router.get("/evidence", response_model=EvidenceListPublic, summary="佐证列表 / list evidence")
async def list_evidence(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(EVIDENCE)],
    hazard_id: QueryId64 = None,
    rectification_id: QueryId64 = None,
    inspection_id: QueryId64 = None,
) -> EvidenceListPublic:
    """Evidence files on the sites the caller may see."""
    filters = (
        Filters()
        .add("e.hazard_id = %(hazard_id)s", hazard_id=hazard_id)
        .add("e.rectification_id = %(rectification_id)s", rectification_id=rectification_id)
        .add("e.inspection_id = %(inspection_id)s", inspection_id=inspection_id)
    )
    rows, count = await fetch_page(conn, EVIDENCE, who, page, filters)
    return EvidenceListPublic(data=[EvidencePublic.model_validate(r) for r in rows], count=count)


@router.get("/evidence/{evidence_id}", response_model=EvidencePublic, summary="佐证 / one record")
async def get_evidence(conn: ConnDep, who: ReaderDep, evidence_id: Id64) -> EvidencePublic:
    """One evidence record, if the caller may see its site."""
    return EvidencePublic.model_validate(await fetch_one(conn, EVIDENCE, who, evidence_id))


@router.get(
    "/evidence/{evidence_id}/content",
    response_class=FileResponse,
    summary="下载佐证 / download the file",
    responses={
        200: {
            "description": "the file",
            "content": {media: _BINARY for media in files.MEDIA_TYPES},
        }
    },
)
async def download_evidence(
    conn: ConnDep, who: ReaderDep, settings: SettingsDep, evidence_id: Id64
) -> FileResponse:
    """The file itself, if the caller may see its site (404 otherwise, as for no such file)."""
    row = await fetch_one(conn, EVIDENCE, who, evidence_id)
    path = _files(settings).path_of(row["sha256"])
    if not path.is_file():
        raise HTTPException(404, f"the file of evidence {evidence_id} is missing from storage")
    return FileResponse(
        path,
        media_type=row["media_type"],
        filename=row["filename"] or f"evidence-{evidence_id}",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"},
    )
