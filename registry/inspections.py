"""Investigation (隐患排查): checklists by hazard kind, inspection plans, records, missed rounds.

Pure: no I/O beyond reading the packaged checklist file once. The checklists
(`registry/checklists.yaml`) give each hazard kind its patrol items, each with the clause it
comes from and a confidence (standard / practice / default), as the threshold profiles do, and a
default frequency. A plan (per work) copies the items it checks, names its frequency and the
responsible inspector; a record answers every item of its plan (pass, fail, not applicable); a
failed item becomes a hazard in one step (`registry.lifecycle.register`, source `inspection`).
A window of the plan's frequency that ends without a record is a missed inspection
(`missed_windows`), written by the sweep as an `inspection_events` row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Literal, TypedDict, get_args

import yaml

from hazmon.vocabulary import InspectionResult

Confidence = Literal["standard", "practice", "default"]
CONFIDENCES: tuple[Confidence, ...] = get_args(Confidence)
ITEM_CODE = r"^[a-z][a-z0-9_]{0,39}$"
"""An item's code: the name a record's results use."""
MAX_ITEMS = 50
"""Items of one plan (no source: a patrol sheet fits on a page or two)."""
MAX_FREQUENCY_H = 24 * 366
MISSED_GRACE = timedelta(hours=1)
"""How long after a window ends a record may still arrive before the window counts as missed
(no source: an inspector's phone syncing once back in coverage)."""
MAX_WINDOWS_PER_SWEEP = 400
"""Windows of one plan looked at by one sweep; older unchecked ones are skipped (a plan hourly
for a fortnight without a sweep), so a sweep's work is bounded."""


class InspectionError(ValueError):
    """A checklist, plan or record that does not hold together; `field` names the part."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ChecklistItem(TypedDict):
    """One thing a patrol checks, with where it comes from."""

    code: str
    text_zh: str
    text_en: str
    clause: str
    source: str
    confidence: Confidence


@dataclass(frozen=True, slots=True)
class Checklist:
    """The patrol items of one hazard kind and their default frequency."""

    kind: str
    name_zh: str
    frequency_h: int
    frequency_source: str
    frequency_confidence: Confidence
    items: tuple[ChecklistItem, ...]

    def item(self, code: str) -> ChecklistItem:
        """The item with this code; InspectionError if the kind has none."""
        for item in self.items:
            if item["code"] == code:
                return item
        raise InspectionError(f"no item {code!r} in the {self.kind} checklist", "items")


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InspectionError(f"{where}: {key} must be a non-empty text")
    return value


def parse_checklists(raw: object) -> dict[str, Checklist]:
    """Read and check the checklist file's content: every item has a code, texts, a clause,
    a source and a confidence; codes are unique per kind. Loud on a bad file (it ships with
    hazmon)."""
    if not isinstance(raw, Mapping):
        raise InspectionError("the checklist file is a mapping of hazard kinds")
    lists = {}
    for kind, body in raw.items():
        if not isinstance(body, Mapping) or not isinstance(body.get("items"), list):
            raise InspectionError(f"{kind}: needs items")
        frequency = body.get("frequency_h")
        if not isinstance(frequency, int) or not 1 <= frequency <= MAX_FREQUENCY_H:
            raise InspectionError(f"{kind}: frequency_h must be 1 to {MAX_FREQUENCY_H} hours")
        confidence = body.get("frequency_confidence")
        if confidence not in CONFIDENCES:
            raise InspectionError(f"{kind}: frequency_confidence must be one of {CONFIDENCES}")
        items: list[ChecklistItem] = []
        for i, item in enumerate(body["items"]):
            where = f"{kind}.items[{i}]"
            if not isinstance(item, Mapping):
                raise InspectionError(f"{where}: an item is a mapping")
            code = _text(item, "code", where)
            if not re.fullmatch(ITEM_CODE, code) or code in {x["code"] for x in items}:
                raise InspectionError(f"{where}: code {code!r} is not a new {ITEM_CODE}")
            if item.get("confidence") not in CONFIDENCES:
                raise InspectionError(f"{where}: confidence must be one of {CONFIDENCES}")
            items.append(
                ChecklistItem(
                    code=code,
                    text_zh=_text(item, "text_zh", where),
                    text_en=_text(item, "text_en", where),
                    clause=_text(item, "clause", where),
                    source=_text(item, "source", where),
                    confidence=item["confidence"],
                )
            )
        lists[str(kind)] = Checklist(
            kind=str(kind),
            name_zh=_text(body, "name_zh", str(kind)),
            frequency_h=frequency,
            frequency_source=_text(body, "frequency_source", str(kind)),
            frequency_confidence=confidence,
            items=tuple(items),
        )
    return lists


@cache
def checklists() -> dict[str, Checklist]:
    """The packaged checklists by hazard kind (read once)."""
    text = (resources.files("registry") / "checklists.yaml").read_text(encoding="utf-8")
    return parse_checklists(yaml.safe_load(text))


def checklist(kind: str) -> Checklist:
    """The checklist of `kind`; InspectionError if hazmon has none for it."""
    found = checklists().get(kind)
    if found is None:
        raise InspectionError(f"no inspection checklist for hazard kind {kind!r}", "work_id")
    return found


def plan_items(
    kind: str, codes: Sequence[str] | None = None, extra: Sequence[str] = ()
) -> list[ChecklistItem]:
    """The items of a new plan: the kind's items named by `codes` (all if None), in the
    checklist's order, then the plan's own texts `extra` (coded `extra_1`, ... and marked as
    the plan author's, confidence `default`)."""
    base = checklist(kind)
    if codes is None:
        chosen = list(base.items)
    else:
        wanted = list(dict.fromkeys(codes))
        for code in wanted:
            base.item(code)
        chosen = [item for item in base.items if item["code"] in wanted]
    for n, text in enumerate(extra, start=1):
        if not text.strip():
            raise InspectionError("an extra item needs its text", "extra_items")
        chosen.append(
            ChecklistItem(
                code=f"extra_{n}",
                text_zh=text.strip(),
                text_en=text.strip(),
                clause="none",
                source="added by the plan's author (no source)",
                confidence="default",
            )
        )
    if not chosen:
        raise InspectionError("a plan checks at least one item", "items")
    if len(chosen) > MAX_ITEMS:
        raise InspectionError(f"a plan checks at most {MAX_ITEMS} items", "items")
    return chosen


class ItemResult(TypedDict):
    """One item's result in a record."""

    item: str
    result: InspectionResult
    note: str


def check_results(
    items: Sequence[Mapping[str, Any]], results: Sequence[ItemResult]
) -> list[ItemResult]:
    """The results of a record in the plan's item order, every item answered exactly once.

    Raises:
        InspectionError: an item left out, answered twice, or not in the plan.
    """
    codes = [str(item["code"]) for item in items]
    given: dict[str, ItemResult] = {}
    for r in results:
        if r["item"] not in codes:
            raise InspectionError(f"item {r['item']!r} is not in the plan", "results")
        if r["item"] in given:
            raise InspectionError(f"item {r['item']!r} is answered twice", "results")
        given[r["item"]] = r
    missing = [c for c in codes if c not in given]
    if missing:
        raise InspectionError(f"every item needs a result; missing {missing}", "results")
    return [given[c] for c in codes]


@dataclass(frozen=True, slots=True)
class Window:
    """One period of a plan's frequency: an inspection is due in [start, end)."""

    start: datetime
    end: datetime


def missed_windows(
    *,
    starts_at: datetime,
    frequency: timedelta,
    checked_until: datetime | None,
    performed: Sequence[datetime],
    now: datetime,
    grace: timedelta = MISSED_GRACE,
    max_windows: int = MAX_WINDOWS_PER_SWEEP,
) -> tuple[list[Window], datetime | None]:
    """The windows of a plan that ended (plus `grace`) without a record, not looked at before.

    Windows are [starts_at + k·frequency, starts_at + (k+1)·frequency). Those ending after
    `checked_until` and at least `grace` before `now` are looked at, the latest `max_windows` of
    them; a window is missed when no time of `performed` falls inside it.

    Returns:
        The missed windows, oldest first, and the new `checked_until` (the end of the last window
        looked at; None if none was).
    """
    if frequency <= timedelta(0):
        raise InspectionError("a plan's frequency must be positive", "frequency_h")
    horizon = now - grace
    last = int((horizon - starts_at) / frequency)  # windows 0 .. last-1 have ended
    if last <= 0:
        return [], checked_until
    first = 0 if checked_until is None else max(0, round((checked_until - starts_at) / frequency))
    first = max(first, last - max_windows)
    if first >= last:
        return [], checked_until
    times = sorted(performed)
    missed = []
    for k in range(first, last):
        start = starts_at + k * frequency
        end = start + frequency
        if not any(start <= t < end for t in times):
            missed.append(Window(start, end))
    return missed, starts_at + last * frequency
