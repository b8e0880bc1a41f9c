"""`accepted`: what counts as a receiver taking a message; pure."""

from __future__ import annotations

import pytest

from notify import accepted


@pytest.mark.parametrize(
    ("kind", "status", "body", "expected"),
    [
        ("generic", 204, b"", None),
        ("generic", 200, b"[]", None),  # a generic receiver's 2xx is enough
        ("wecom", 200, b'{"errcode": 0, "errmsg": "ok"}', None),
        ("dingtalk", 200, b"", None),  # no body: nothing refused
        ("feishu", 200, b'{"code": 0, "msg": "success"}', None),
        ("feishu", 200, b'{"StatusCode": 0}', None),
        ("wecom", 200, b'{"errcode": 93000}', 'receiver refused: {"errcode": 93000}'),
        ("feishu", 200, b'{"code": "19021"}', 'receiver refused: {"code": "19021"}'),
        ("dingtalk", 503, b"busy", "HTTP 503: busy"),
        ("wecom", 200, b"<html>", "unreadable answer: <html>"),
        ("wecom", 200, b"[]", "unreadable answer: []"),
        ("dingtalk", 200, b"5", "unreadable answer: 5"),
        ("feishu", 200, b"null", "unreadable answer: null"),
    ],
)
def test_what_a_receiver_answers_decides_delivery(
    kind: str, status: int, body: bytes, expected: str | None
) -> None:
    assert accepted(kind, status, body) == expected  # type: ignore[arg-type]
