"""The two lists and the notice (两个清单、挂牌督办公告) as CSV and XLSX, shared by the API and the CLI.

- the dynamic hazard list (动态隐患清单): one row per hazard;
- the rectification-measures list (整改措施清单): one row per round of rectification;
- the notice of hazards under listed supervision (挂牌督办公告), ordered by their due date.

Each list is read with the same filters as the API's lists (region, site, hazard kind, level,
state, period), within a scope (the API's caller; everything from the CLI), and bounded:
more than `MAX_ROWS` matching rows is refused (`ListTooLongError`) rather than cut, since a list
that silently lacks rows misleads its reader. Columns are headed in Chinese first, English
beside. CSV is UTF-8 with a BOM (so Excel opens it as UTF-8) and streamed row by row; XLSX is
written with openpyxl's write-only workbook into a spooled temporary file. Times are China
Standard Time (UTC+8), as a supervision office reads them.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import IO, Any, Literal, LiteralString

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from hazmon.vocabulary import HAZARD_LEVEL_LABELS, HAZARD_SOURCE_LABELS, HAZARD_STATE_LABELS

CHINA = timezone(timedelta(hours=8), "CST")
"""China Standard Time: the lists' times (no daylight saving since 1991)."""
MAX_ROWS = 10_000
"""Rows of one exported list (no source: a province's open hazards fit many times over; a
larger list is narrowed by region or period)."""
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
Format = Literal["csv", "xlsx"]
Value = str | int | float | datetime | None


class ListTooLongError(Exception):
    """More rows match than a list may hold."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"{count} rows match, a list holds at most {limit}: narrow the region, site or period"
        )
        self.count = count
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its Chinese and English headings and how a row gives its value."""

    zh: str
    en: str
    value: Callable[[Mapping[str, Any]], Value]
    width: int = 14

    @property
    def heading(self) -> str:
        """The column's heading, Chinese first: '隐患编号 / No.'."""
        return f"{self.zh} / {self.en}"


@dataclass(frozen=True, slots=True)
class ListSpec:
    """One list: its name, sheet title, columns, the SQL it reads, and its period column."""

    name: str
    title_zh: str
    columns: tuple[Column, ...]
    select: LiteralString
    source: LiteralString
    order: LiteralString
    time_column: LiteralString
    conditions: tuple[LiteralString, ...] = field(default=())


def _get(key: str) -> Callable[[Mapping[str, Any]], Value]:
    return lambda row: row.get(key)


def _label(labels: Mapping[str, tuple[str, str]], key: str) -> Callable[[Mapping[str, Any]], Value]:
    return lambda row: labels.get(row.get(key) or "", (row.get(key), ""))[0]


def _yes_no(key: str) -> Callable[[Mapping[str, Any]], Value]:
    return lambda row: "是" if row.get(key) else "否"


def _works(row: Mapping[str, Any]) -> Value:
    return " ".join(p for p in (row.get("site_name"), row.get("work_name")) if p)


def _state(row: Mapping[str, Any]) -> Value:
    label = HAZARD_STATE_LABELS.get(row["state"], (row["state"], ""))[0]
    return f"{label}（已逾期）" if row.get("overdue") else label


def _outcome(row: Mapping[str, Any]) -> Value:
    if row.get("outcome") == "accepted":
        return "验收合格"
    if row.get("outcome") == "rejected":
        return "复查不合格"
    return "待复查" if row.get("reported_at") else "整改中"


_HAZARD_COLUMNS = (
    Column("隐患编号", "No.", _get("id"), 10),
    Column("隐患名称", "Hazard", _get("title"), 30),
    Column("工程", "Works", _works, 28),
    Column("位置", "Location", _get("location"), 18),
    Column("来源", "Source", _label(HAZARD_SOURCE_LABELS, "source"), 10),
    Column("等级", "Level", _label(HAZARD_LEVEL_LABELS, "level"), 14),
    Column("发现时间", "Found", _get("found_at"), 17),
    Column("整改措施", "Measures", _get("measures"), 30),
    Column("责任单位", "Responsible unit", _get("responsible_unit"), 20),
    Column("责任人", "Responsible person", _get("responsible_person"), 12),
    Column("资金（元）", "Funds (yuan)", _get("funds_yuan"), 12),
    Column("整改期限", "Deadline", _get("deadline"), 17),
    Column("状态", "State", _state, 14),
    Column("验收人", "Verified by", _get("verifier"), 14),
    Column("销号时间", "Closed", _get("closed_at"), 17),
    Column("是否挂牌督办", "Listed supervision", _yes_no("listed_supervision"), 12),
)
_SUPERVISION_LEVELS = {"province": "省级", "city": "市级", "county": "县级"}

_HAZARD_SELECT: LiteralString = """
h.id, h.title, s.name AS site_name, w.name AS work_name, h.location, h.source, h.level,
h.found_at, h.measures, h.responsible_unit, h.responsible_person, h.funds_yuan, h.deadline,
h.state, coalesce(uv.name, h.verified_by) AS verifier, h.closed_at, h.listed_supervision,
h.supervising_authority, h.supervision_level, h.supervision_due, s.region_code,
coalesce((h.state = 'assigned' AND h.deadline < now())
         OR (h.state = 'rectified' AND h.verification_due < now()), false) AS overdue"""
_HAZARD_SOURCE: LiteralString = """
hazards h JOIN sites s ON s.id = h.site_id LEFT JOIN works w ON w.id = h.work_id
LEFT JOIN users uv ON uv.id = h.verified_by_user"""

HAZARD_LIST = ListSpec(
    name="hazards",
    title_zh="动态隐患清单",
    columns=_HAZARD_COLUMNS,
    select=_HAZARD_SELECT,
    source=_HAZARD_SOURCE,
    order="h.found_at, h.id",
    time_column="h.found_at",
)
SUPERVISION_LIST = ListSpec(
    name="supervision",
    title_zh="挂牌督办隐患公告",
    columns=(
        *_HAZARD_COLUMNS[:6],
        Column("督办单位", "Supervising authority", _get("supervising_authority"), 20),
        Column(
            "督办层级",
            "Level of listing",
            lambda row: _SUPERVISION_LEVELS.get(row.get("supervision_level") or "", ""),
            10,
        ),
        Column("督办期限", "Due", _get("supervision_due"), 17),
        *_HAZARD_COLUMNS[7:15],
    ),
    select=_HAZARD_SELECT,
    source=_HAZARD_SOURCE,
    order="h.supervision_due, h.id",
    time_column="h.found_at",
    conditions=("h.listed_supervision",),
)
RECTIFICATION_LIST = ListSpec(
    name="rectifications",
    title_zh="整改措施清单",
    columns=(
        Column("隐患编号", "No.", _get("hazard_id"), 10),
        Column("隐患名称", "Hazard", _get("title"), 30),
        Column("工程", "Works", _works, 28),
        Column("等级", "Level", _label(HAZARD_LEVEL_LABELS, "level"), 14),
        Column("轮次", "Round", _get("round"), 6),
        Column("整改措施", "Measures", _get("measures"), 30),
        Column("责任单位", "Responsible unit", _get("responsible_unit"), 20),
        Column("责任人", "Responsible person", _get("responsible_person"), 12),
        Column("资金（元）", "Funds (yuan)", _get("funds_yuan"), 12),
        Column("整改期限", "Deadline", _get("deadline"), 17),
        Column("应急预案", "Emergency plan", _get("emergency_plan"), 24),
        Column("整改上报时间", "Reported", _get("reported_at"), 17),
        Column("复查期限", "Verification due", _get("verification_due"), 17),
        Column("复查结果", "Outcome", _outcome, 12),
        Column("验收人", "Verified by", _get("verifier"), 14),
        Column("验收时间", "Verified", _get("verified_at"), 17),
        Column("状态", "State", _state, 14),
        Column("是否挂牌督办", "Listed supervision", _yes_no("listed_supervision"), 12),
    ),
    select="""
r.id, r.hazard_id, h.title, s.name AS site_name, w.name AS work_name, h.level, r.round,
r.measures, r.responsible_unit, r.responsible_person, r.funds_yuan, r.deadline,
r.emergency_plan, r.reported_at, r.verification_due, r.outcome,
coalesce(uv.name, r.verified_by) AS verifier, r.verified_at, h.state, h.listed_supervision,
coalesce(r.outcome IS NULL AND ((r.reported_at IS NULL AND r.deadline < now())
         OR (r.reported_at IS NOT NULL AND r.verification_due < now())), false) AS overdue""",
    source="""
rectifications r JOIN hazards h ON h.id = r.hazard_id JOIN sites s ON s.id = h.site_id
LEFT JOIN works w ON w.id = h.work_id LEFT JOIN users uv ON uv.id = r.verified_by_user""",
    order="r.assigned_at, r.id",
    time_column="r.assigned_at",
)
LISTS: Mapping[str, ListSpec] = {
    spec.name: spec for spec in (HAZARD_LIST, RECTIFICATION_LIST, SUPERVISION_LIST)
}


@dataclass(frozen=True, slots=True)
class ListFilters:
    """The filters of the lists; None leaves a filter out.

    Attributes:
        region: region code prefix of the sites (2, 4 or 6 digits).
        site_id: one site.
        kind: the work's hazard kind.
        level: general or major.
        state: the hazard's state.
        start / end: the period `[start, end)` of the list's time column (the hazard's finding,
            the round's assignment).
    """

    region: str | None = None
    site_id: int | None = None
    kind: str | None = None
    level: str | None = None
    state: str | None = None
    start: datetime | None = None
    end: datetime | None = None


Scope = tuple[LiteralString, Mapping[str, Any]]
"""A condition on `sites s` that limits rows to a caller's scope, with its parameters."""
EVERYTHING: Scope = ("TRUE", {})


def _where(
    spec: ListSpec, filters: ListFilters, scope: Scope
) -> tuple[sql.Composable, dict[str, Any]]:
    parts: list[LiteralString] = [scope[0], *spec.conditions]
    params: dict[str, Any] = dict(scope[1])
    optional: Sequence[tuple[LiteralString, str, Any]] = (
        ("s.region_code LIKE %(f_region)s || '%%'", "f_region", filters.region),
        ("h.site_id = %(f_site)s", "f_site", filters.site_id),
        ("w.hazard_kind = %(f_kind)s", "f_kind", filters.kind),
        ("h.level = %(f_level)s", "f_level", filters.level),
        ("h.state = %(f_state)s", "f_state", filters.state),
    )
    for condition, name, value in optional:
        if value is not None:
            parts.append(condition)
            params[name] = value
    if filters.start is not None:
        parts.append(spec.time_column + " >= %(f_start)s")
        params["f_start"] = filters.start
    if filters.end is not None:
        parts.append(spec.time_column + " < %(f_end)s")
        params["f_end"] = filters.end
    where = sql.SQL(" AND ").join(sql.SQL("({})").format(sql.SQL(p)) for p in parts)
    return where, params


async def fetch_list(
    conn: AsyncConnection[Any],
    spec: ListSpec,
    filters: ListFilters,
    scope: Scope = EVERYTHING,
    max_rows: int = MAX_ROWS,
) -> list[dict[str, Any]]:
    """The rows of a list, in its order.

    Raises:
        ListTooLongError: more than `max_rows` rows match.
    """
    where, params = _where(spec, filters, scope)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %(f_limit)s").format(
                sql.SQL(spec.select), sql.SQL(spec.source), where, sql.SQL(spec.order)
            ),
            {**params, "f_limit": max_rows + 1},
        )
        rows = await cur.fetchall()
        if len(rows) > max_rows:
            await cur.execute(
                sql.SQL("SELECT count(*) AS n FROM {} WHERE {}").format(
                    sql.SQL(spec.source), where
                ),
                params,
            )
            counted = await cur.fetchone()
            raise ListTooLongError(int(counted["n"]) if counted else len(rows), max_rows)
    return rows


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""How a text that a spreadsheet would run as a formula begins (OWASP, CSV injection)."""


def _cell(value: Value) -> Value:
    if isinstance(value, datetime):
        return value.astimezone(CHINA).replace(tzinfo=None)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        # text from the public (a reported hazard's title) is never a formula, and XML 1.0
        # has no control characters: a spreadsheet must open whatever was typed
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
        if value.startswith(_FORMULA_START):
            value = "'" + value
    return value


def _text(value: Value) -> str:
    value = _cell(value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def csv_chunks(spec: ListSpec, rows: Sequence[Mapping[str, Any]]) -> Iterator[bytes]:
    """The list as CSV, UTF-8 with a BOM, header first, a chunk per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    writer.writerow([c.heading for c in spec.columns])
    yield "\ufeff".encode() + flush()
    for row in rows:
        writer.writerow([_text(c.value(row)) for c in spec.columns])
        yield flush()


def write_xlsx(spec: ListSpec, rows: Sequence[Mapping[str, Any]], out: IO[bytes]) -> None:
    """The list as an XLSX workbook of one sheet, header row bold and frozen, into `out`."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(spec.title_zh)
    sheet.freeze_panes = "A2"
    for n, column in enumerate(spec.columns, start=1):
        letter = _column_letter(n)
        sheet.column_dimensions[letter].width = column.width
    bold = Font(bold=True)
    header = []
    for column in spec.columns:
        cell = WriteOnlyCell(sheet, value=column.heading)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        cells = []
        for column in spec.columns:
            value = _cell(column.value(row))
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(value, str):
                cell.data_type = "s"  # openpyxl would take a text starting with '=' as a formula
            cells.append(cell)
        sheet.append(cells)
    book.save(out)


def _column_letter(n: int) -> str:
    letters = ""
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def xlsx_file(spec: ListSpec, rows: Sequence[Mapping[str, Any]]) -> IO[bytes]:
    """The list as XLSX in a spooled temporary file (in memory up to 4 MiB, then on disk),
    rewound for reading."""
    out = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115 (returned open)
    write_xlsx(spec, rows, out)
    out.seek(0)
    return out


def file_name(spec: ListSpec, fmt: Format, now: datetime) -> str:
    """The download's file name: `动态隐患清单-20261129.xlsx`."""
    return f"{spec.title_zh}-{now.astimezone(CHINA):%Y%m%d}.{fmt}"
