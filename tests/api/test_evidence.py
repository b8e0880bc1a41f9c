"""Evidence: uploaded as the body, streamed to disk under its SHA-256, type checked by its magic
bytes, bounded in size (413), served back only within the caller's scope, on the audit trail."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from registry.evidence import EvidenceError, EvidenceFiles, sniff
from tests.support.tokens import bearer
from tests.support.world import EVIDENCE_MAX_BYTES, JPEG, World

PDF = b"%PDF-1.7\n" + b"1 0 obj <<>> endobj\n" * 50 + b"%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def _client(world: World, role: str) -> httpx.Client:
    return httpx.Client(base_url=world.base, headers=bearer(world.tokens[role] or ""), timeout=30)


def _upload(
    http: httpx.Client, url: str, content: bytes | Iterator[bytes], media: str, **params: str
) -> httpx.Response:
    return http.post(url, content=content, headers={"content-type": media}, params=params)


def test_upload_scoped_download_and_the_audit_trail(world: World, tmp_path: Path) -> None:
    a, b = world.ids["A"], world.ids["B"]
    hazard = f"/hazards/{a['hazard_assigned']}"
    with _client(world, "enterprise") as enterprise:
        created = _upload(
            enterprise, f"{hazard}/evidence", PDF, "application/pdf", filename="验收报告.pdf",
            note="第三方检测报告",
        )  # fmt: skip
        assert created.status_code == 201, created.text
        record = created.json()
        sha = hashlib.sha256(PDF).hexdigest()
        assert (record["sha256"], record["size_bytes"], record["media_type"]) == (
            sha,
            len(PDF),
            "application/pdf",
        )
        assert (tmp_path / "evidence" / sha[:2] / sha).read_bytes() == PDF
        # the same content again: a second record, one file
        again = _upload(
            enterprise, f"/rectifications/{a['rectification_assigned']}/evidence", PDF,
            "application/octet-stream",
        )  # fmt: skip
        assert again.status_code == 201, again.text
        assert (again.json()["rectification_id"], again.json()["hazard_id"]) == (
            a["rectification_assigned"],
            a["hazard_assigned"],
        )
        assert len(list((tmp_path / "evidence" / sha[:2]).iterdir())) == 1
        assert not list((tmp_path / "evidence" / "tmp").iterdir())
        download = enterprise.get(f"/evidence/{record['id']}/content")
        assert download.status_code == 200
        assert download.content == PDF
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["x-content-type-options"] == "nosniff"
        assert "attachment" in download.headers["content-disposition"]
        events = enterprise.get(f"{hazard}/events").json()["data"]
        uploads = [e for e in events if e["action"] == "evidence"]
        assert [e["data"]["evidence_id"] for e in uploads] == [record["id"], again.json()["id"]]
        assert uploads[0]["data"]["sha256"] == sha
        assert uploads[0]["note"] == "第三方检测报告"
        listed = enterprise.get("/evidence", params={"hazard_id": a["hazard_assigned"]})
        assert listed.json()["count"] == 2
        # an inspection's photo goes to the audit log
        photo = _upload(enterprise, f"/inspections/{a['inspection']}/evidence", JPEG, "image/jpeg")
        assert photo.status_code == 201, photo.text
    # another region's user gets 404 for the record and the file, as for no such file
    with _client(world, "inspector") as wuhan:
        assert wuhan.get(f"/evidence/{record['id']}/content").status_code == 200
        for url in (f"/evidence/{b['evidence']}", f"/evidence/{b['evidence']}/content"):
            refused = wuhan.get(url)
            assert refused.status_code == 404
            assert refused.headers["content-type"] == "application/problem+json"
        assert wuhan.get("/evidence/999999/content").status_code == 404
    guangdong = issue_for(world, "44")
    with httpx.Client(base_url=world.base, headers=bearer(guangdong)) as other:
        assert other.get(f"/evidence/{record['id']}/content").status_code == 404
        assert other.get(f"/evidence/{b['evidence']}/content").status_code == 200
        upload = _upload(other, f"{hazard}/evidence", JPEG, "image/jpeg")
        assert upload.status_code == 404
    with psycopg.connect(world.db_url) as conn:
        audit = conn.execute(
            "SELECT action, subject_id FROM audit_log WHERE action = 'inspection.evidence'"
        ).fetchall()
    assert audit == [("inspection.evidence", a["inspection"])]


def issue_for(world: World, region: str) -> str:
    from tests.support.tokens import issue

    return issue(world.db_url, "inspector", region=region)


def test_over_the_limit_is_413_and_nothing_stays(world: World, tmp_path: Path) -> None:
    url = f"/hazards/{world.ids['A']['hazard_registered']}/evidence"
    big = JPEG + b"\x00" * EVIDENCE_MAX_BYTES
    with _client(world, "inspector") as http:
        declared = _upload(http, url, big, "image/jpeg")
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"
        assert str(EVIDENCE_MAX_BYTES) in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            yield JPEG
            for _ in range(EVIDENCE_MAX_BYTES // 4096 + 2):
                yield b"\x00" * 4096

        streamed = _upload(http, url, chunks(), "image/jpeg")
        assert streamed.status_code == 413
        assert "bytes" in streamed.json()["detail"]
        # larger than a JSON body may be, within the evidence limit: accepted
        fits = JPEG + b"\x00" * (EVIDENCE_MAX_BYTES - len(JPEG))
        assert _upload(http, url, fits, "image/jpeg").status_code == 201
    assert not list((tmp_path / "evidence" / "tmp").iterdir())


@pytest.mark.parametrize(
    ("content", "media", "says"),
    [
        (b"GIF89a" + b"\x00" * 64, "image/gif", "image/gif is not accepted"),
        (b"MZ\x90\x00" + b"\x00" * 64, "image/jpeg", "declared image/jpeg, but"),
        (b"MZ\x90\x00" + b"\x00" * 64, "application/octet-stream", "checked by its first bytes"),
        (PNG, "image/jpeg", "declared image/jpeg, but the content is image/png"),
        (b"<html><script>", "text/html", "text/html is not accepted"),
    ],
)
def test_a_type_not_allowed_or_not_matching_its_content_is_415(
    world: World, content: bytes, media: str, says: str
) -> None:
    url = f"/hazards/{world.ids['A']['hazard_registered']}/evidence"
    with _client(world, "inspector") as http:
        refused = _upload(http, url, content, media)
    assert refused.status_code == 415
    assert refused.headers["content-type"] == "application/problem+json"
    assert says in refused.json()["detail"]


def test_an_empty_upload_is_422(world: World) -> None:
    url = f"/hazards/{world.ids['A']['hazard_registered']}/evidence"
    with _client(world, "inspector") as http:
        assert _upload(http, url, b"", "image/jpeg").status_code == 422


def test_sniffing_reads_the_magic_bytes() -> None:
    assert sniff(JPEG[:12]) == "image/jpeg"
    assert sniff(PNG[:12]) == "image/png"
    assert sniff(PDF[:12]) == "application/pdf"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBP") == "image/webp"
    assert sniff(b"\x00\x00\x00\x18ftypheic") == "image/heic"
    assert sniff(b"\x00\x00\x00\x18ftypisom") is None  # an MP4
    assert sniff(b"") is None


def test_a_refused_stream_stops_early_and_leaves_nothing(tmp_path: Path) -> None:
    taken: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(1000):
            taken.append(n)
            yield b"MZ\x90\x00" + b"\x00" * 1020 if n == 0 else b"\x00" * 1024

    store = EvidenceFiles(tmp_path, max_bytes=10 * 1024 * 1024)
    with pytest.raises(EvidenceError) as refused:
        asyncio.run(store.receive(chunks(), "image/jpeg"))
    assert refused.value.status == 415
    assert len(taken) == 1  # refused on the first chunk, the rest never read
    assert not list((tmp_path / "tmp").iterdir())
