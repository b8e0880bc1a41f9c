"""Evidence files (佐证材料): photos from a phone and PDFs, stored content-addressed on disk.

An upload is streamed to a temporary file in the evidence directory while its SHA-256 is
computed, so no more than one chunk is ever held in memory; it is refused as soon as it passes
the size limit (413) or as soon as its first bytes show a type that is not allowed or not the one
declared (415: the type is read from the content's magic bytes, not only from the header). The
finished file is renamed to `DIR/ab/abcdef…` (its hash): the same photo uploaded twice is stored
once. The `evidence` row says where it belongs and whose scope may read it; an upload to a hazard
or its rectification is also an `evidence` event of the hazard (its audit trail), one to an
inspection record an `audit_log` line.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from psycopg import AsyncConnection

from registry import lifecycle
from registry.alerts import audit
from registry.hazard_store import HazardStore

MediaType = Literal["image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf"]
MEDIA_TYPES: tuple[MediaType, ...] = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "application/pdf",
)
"""What may be uploaded: phone photos (JPEG, PNG, WebP, HEIC: iPhones' default) and PDFs."""
_ALIASES: Mapping[str, str] = {"image/jpg": "image/jpeg", "image/heif": "image/heic"}
ANY_TYPE = "application/octet-stream"
"""A declared type that leaves the type to the content (what many upload clients send)."""
_HEAD_BYTES = 12
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_SHA256 = re.compile(r"[0-9a-f]{64}")


class EvidenceError(Exception):
    """An upload refused: `status` is the HTTP status it means (413, 415 or 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sniff(head: bytes) -> MediaType | None:
    """The type the first bytes of a file show (its magic number), or None if not an allowed one.

    JPEG `FF D8 FF`; PNG `89 50 4E 47 0D 0A 1A 0A`; WebP `RIFF....WEBP`; HEIC/HEIF an ISO-BMFF
    `ftyp` box with a HEIF brand; PDF `%PDF-`.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/heic"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def declared_type(content_type: str | None) -> MediaType | None:
    """The allowed type a Content-Type header declares; None for `application/octet-stream` or
    no header (the content decides).

    Raises:
        EvidenceError: 415 for any other type.
    """
    if not content_type:
        return None
    base = content_type.split(";", 1)[0].strip().lower()
    base = _ALIASES.get(base, base)
    if base == ANY_TYPE:
        return None
    for media in MEDIA_TYPES:
        if base == media:
            return media
    raise EvidenceError(
        415, f"{base} is not accepted as evidence; send one of {', '.join(MEDIA_TYPES)}"
    )


def _checked(head: bytes, declared: MediaType | None) -> MediaType:
    found = sniff(head)
    if found is None:
        said = f"declared {declared}, but " if declared else ""
        raise EvidenceError(
            415,
            f"{said}the content is none of {', '.join(MEDIA_TYPES)} (checked by its first bytes)",
        )
    if declared is not None and found != declared:
        raise EvidenceError(415, f"declared {declared}, but the content is {found}")
    return found


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file received and stored under its hash."""

    sha256: str
    size_bytes: int
    media_type: MediaType


class EvidenceFiles:
    """The evidence directory: receiving uploads into it and finding files in it."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def path_of(self, sha256: str) -> Path:
        """Where the file with this hash is stored."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.directory / sha256[:2] / sha256

    async def receive(self, chunks: AsyncIterator[bytes], content_type: str | None) -> StoredFile:
        """Stream an upload to disk, checking its size and type as it arrives.

        Raises:
            EvidenceError: 413 past `max_bytes`; 415 for a type not allowed, or content whose
                magic bytes are not an allowed type or not the declared one; 422 for an empty
                upload. Nothing is left on disk then.
        """
        declared = declared_type(content_type)
        spool = self.directory / "tmp"
        await asyncio.to_thread(spool.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=spool, prefix="upload-")
        temporary = Path(name)
        try:
            digest = hashlib.sha256()
            head = b""
            size = 0
            media: MediaType | None = None
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise EvidenceError(
                            413, f"evidence files are at most {self.max_bytes} bytes"
                        )
                    if media is None and len(head) < _HEAD_BYTES:
                        head += chunk[: _HEAD_BYTES - len(head)]
                        if len(head) >= _HEAD_BYTES:
                            media = _checked(head, declared)
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            if size == 0:
                raise EvidenceError(422, "the upload is empty")
            media = media or _checked(head, declared)
            stored = StoredFile(digest.hexdigest(), size, media)
            final = self.path_of(stored.sha256)
            await asyncio.to_thread(_settle, temporary, final)
            return stored
        except BaseException:
            temporary.unlink(missing_ok=True)  # noqa: ASYNC240 (one local unlink, error path)
            raise


def _settle(temporary: Path, final: Path) -> None:
    """Move a received file to its place, or drop it if the same content is stored already."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        temporary.unlink()
    else:
        os.replace(temporary, final)


_INSERT = """
INSERT INTO evidence (sha256, size_bytes, media_type, filename, note, site_id, hazard_id,
                      rectification_id, inspection_id, uploaded_by, uploaded_by_user)
VALUES (%(sha256)s, %(size_bytes)s, %(media_type)s, %(filename)s, %(note)s, %(site_id)s,
        %(hazard_id)s, %(rectification_id)s, %(inspection_id)s, %(uploaded_by)s,
        %(uploaded_by_user)s)
RETURNING id"""


async def record(
    conn: AsyncConnection[Any],
    stored: StoredFile,
    *,
    site_id: int,
    actor: lifecycle.Actor,
    filename: str = "",
    note: str = "",
    hazard: Mapping[str, Any] | None = None,
    rectification_id: int | None = None,
    inspection_id: int | None = None,
    client_addr: str | None = None,
) -> int:
    """Store the row of a received file and put it on its owner's audit trail; return its id.

    Args:
        conn: the caller's connection (the caller commits).
        stored: what `EvidenceFiles.receive` stored.
        site_id: the site of the hazard or inspection (the row's scope).
        actor: who uploaded it.
        filename: the name the uploader gave it.
        note: what it shows.
        hazard: the hazard's row (with `id` and `state`), for a hazard's or rectification's file.
        rectification_id: the round of rectification it documents.
        inspection_id: the inspection record it documents (without a hazard).
        client_addr: where the request came from, for the audit trail.
    """
    cur = await conn.execute(
        _INSERT,
        {
            "sha256": stored.sha256,
            "size_bytes": stored.size_bytes,
            "media_type": stored.media_type,
            "filename": filename,
            "note": note,
            "site_id": site_id,
            "hazard_id": hazard["id"] if hazard else None,
            "rectification_id": rectification_id,
            "inspection_id": inspection_id,
            "uploaded_by": actor.label,
            "uploaded_by_user": actor.user_id,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    evidence_id = int(row["id"] if isinstance(row, dict) else row[0])
    detail = {
        "evidence_id": evidence_id,
        "sha256": stored.sha256,
        "media_type": stored.media_type,
        "size_bytes": stored.size_bytes,
        "filename": filename,
    }
    if hazard is not None:
        if rectification_id is not None:
            detail["rectification_id"] = rectification_id
        change = lifecycle.evidence(lifecycle.hazard_from_row(hazard), **detail)
        await HazardStore(conn).apply(int(hazard["id"]), change, actor, note)
    else:
        await audit(
            conn,
            actor=actor.label,
            action="inspection.evidence",
            subject="inspection",
            subject_id=inspection_id,
            detail=detail,
            client_addr=client_addr,
        )
    return evidence_id
