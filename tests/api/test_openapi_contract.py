"""The HTTP API's contract: the live OpenAPI document is the one checked in.

A change to the API is then a deliberate change of `tests/api/openapi.json` in the same commit
(regenerate it with `python -m tests.api.test_openapi_contract`), never a side effect of moving
code around.
"""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from api import create_app
from hazmon.settings import Settings

SNAPSHOT = Path(__file__).with_name("openapi.json")


def live_document() -> str:
    """The OpenAPI document of the app as served, in the snapshot's stable formatting."""
    spec = create_app(Settings().api, CollectorRegistry()).openapi()
    return json.dumps(spec, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def test_the_openapi_document_is_the_checked_in_contract() -> None:
    live = live_document()
    assert live == SNAPSHOT.read_text(encoding="utf-8"), (
        "the OpenAPI document changed; if that is intended, regenerate tests/api/openapi.json "
        "with `.venv/bin/python -m tests.api.test_openapi_contract` and say why in the commit"
    )


if __name__ == "__main__":
    SNAPSHOT.write_text(live_document(), encoding="utf-8")
