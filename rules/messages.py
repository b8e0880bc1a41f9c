"""Bilingual explanations of transitions: Chinese first, English beside.

Example: '围护墙顶部水平位移累计变化 31.2 mm，超过一级基坑预警值 30 mm' /
'wall-top horizontal displacement: cumulative change 31.2 mm exceeds the grade-1 pit alarm value
30 mm'.

How each rule kind writes its measure is one entry of `WORDING`. A transition's text depends on
its reading only through the measure's text, so the engine keeps one template per (slot, grades)
(`level_template`) and joins its parts with the measure written as `written` says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from rules.kinds import ConsecutiveOptions, RuleKind, StuckOptions
from rules.resolve import ResolvedRule
from rules.types import Action, Grade

Quantity = Literal["unit", "share", "per_day", "number"]
"""How a measure is written: in the metric's unit, as a percentage, in unit per day, or as a
bare number (the caller writes the unit)."""
VALUE = "\x00"
"""Where the measure's text goes in a template (see `level_template`)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What a slot's messages talk about: the metric's names and unit, and the device."""

    name_zh: str
    name_en: str
    unit: str
    device_code: str


def number(x: float) -> str:
    """A reading as people write it: four significant digits, no exponent, no trailing zeros."""
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.4g}"


_Body = Callable[[ResolvedRule, Subject, str, float, Grade], tuple[str, str]]
"""The body of a one-level rule's message: (rule, subject, measure text, threshold, grade of
the threshold crossed) -> (Chinese, English)."""


@dataclass(frozen=True, slots=True)
class Wording:
    """How a rule kind explains itself.

    Attributes:
        quantity: how its measure is written (see `Quantity`).
        measure: the measure named, Chinese and English, with `{name}` (the metric) and `{q}`
            (the measure's text).
        body: for one-level kinds, the whole condition (replaces measure and threshold).
        cleared: for one-level kinds, how the end of the condition reads.
    """

    quantity: Quantity
    measure: tuple[str, str] = ("{name} {q}", "{name} {q}")
    body: _Body | None = None
    cleared: tuple[str, str] | None = None


def written(rule: ResolvedRule, subject: Subject) -> tuple[float, str]:
    """How `rule` writes its measure x: `number(x * factor) + unit` (the same text in both
    languages), as (factor, unit)."""
    style, unit = WORDING[rule.kind].quantity, subject.unit
    if style == "number":
        return 1.0, ""
    if style == "share" or unit == "1":
        return 100.0, "%"
    if style == "per_day":
        return 1.0, f" {unit}/d"
    return 1.0, f" {unit}".rstrip()


def quantity(rule: ResolvedRule, subject: Subject, x: float) -> str:
    """The graded measure `x` of `rule` with its unit (see `written`)."""
    factor, unit = written(rule, subject)
    return number(x * factor) + unit


def _measure(rule: ResolvedRule, subject: Subject, q: str) -> tuple[str, str]:
    """The measure `q` (formatted by `quantity`) named, in Chinese and English."""
    zh, en = WORDING[rule.kind].measure
    return zh.format(name=subject.name_zh, q=q), en.format(name=subject.name_en, q=q)


def _threshold(rule: ResolvedRule, grade: Grade, q: str) -> tuple[str, str]:
    """The threshold of `grade` with its label, `q` formatted by `quantity`."""
    label_zh, label_en = rule.labels[grade - 1]
    return f"{label_zh} {q}", f"the {label_en} ({q})"


def _jump(rule: ResolvedRule, s: Subject, q_v: str, threshold: float, _: Grade) -> tuple[str, str]:
    t_zh, t_en = _threshold(rule, Grade.BLUE, quantity(rule, s, threshold))
    return (
        f"{s.name_zh}相邻读数突变 {q_v}，超过{t_zh}",
        f"{s.name_en} jumped by {q_v} between readings, over {t_en}",
    )


def _stuck(rule: ResolvedRule, s: Subject, q_v: str, _t: float, _g: Grade) -> tuple[str, str]:
    assert isinstance(rule.options, StuckOptions)
    n = rule.options.count
    return (
        f"{s.name_zh}连续 {n} 次读数不变（{q_v}）",
        f"{s.name_en} stuck at {q_v} for {n} readings",
    )


def _crane_wind(
    rule: ResolvedRule, _s: Subject, q_v: str, threshold: float, _g: Grade
) -> tuple[str, str]:
    limit = number(threshold)
    return (
        f"风速 {q_v} m/s 超过{rule.labels[3][0]}（{limit} m/s）时塔机仍在吊装",
        f"the crane was lifting while the wind was {q_v} m/s, over "
        f"the {rule.labels[3][1]} ({limit} m/s)",
    )


def _consecutive(
    rule: ResolvedRule, s: Subject, q_v: str, threshold: float, grade: Grade
) -> tuple[str, str]:
    opts = rule.options
    assert isinstance(opts, ConsecutiveOptions)
    q_limit = quantity(rule, s, threshold / opts.share)
    label_zh, label_en = rule.labels[grade - 1]
    pct = number(opts.share * 100)
    return (
        f"{s.name_zh}变化速率连续 {opts.count} 个周期超过{label_zh} {q_limit}的 {pct}%，本次 {q_v}",
        f"{s.name_en}: rate over {pct} % of the {label_en} ({q_limit}) for {opts.count} periods "
        f"in a row, now {q_v}",
    )


_RATE = ("{name}变化速率 {q}", "{name}: rate {q}")
WORDING: Mapping[RuleKind, Wording] = {
    "absolute": Wording("unit"),
    "ratio": Wording("share", ("{name}为设计值的 {q}", "{name} at {q} of design")),
    "deviation": Wording("share", ("{name}偏离额定值 {q}", "{name} {q} off nominal")),
    "cumulative": Wording("unit", ("{name}累计变化 {q}", "{name}: cumulative change {q}")),
    "rate": Wording("per_day", _RATE),
    "rated_curve": Wording(
        "share",
        ("{name}为当前幅度额定值的 {q}", "{name} at {q} of the rated load at the current radius"),
    ),
    "jump": Wording("unit", body=_jump, cleared=("读数恢复连续", "readings consistent again")),
    "stuck": Wording("unit", body=_stuck, cleared=("读数恢复变化", "readings change again")),
    "crane_wind": Wording(
        "number",
        body=_crane_wind,
        cleared=(
            "：大风中的吊装已停止或风速已回落",
            "lifting in high wind stopped or the wind dropped",
        ),
    ),
    "consecutive": Wording(
        "per_day",
        _RATE,
        body=_consecutive,
        cleared=("变化速率不再连续超过预警值的规定比例", "rate no longer over the share in a row"),
    ),
}
"""The wording of every rule kind."""

_PREFIX = {
    "open": ("{g_zh}告警：", "{g_en} alert: "),
    "suspect": (
        "传感器疑似故障，数据标记为可疑：",
        "sensor suspected faulty, series marked suspect: ",
    ),
    "escalate": ("升级为{g_zh}：", "escalated to {g_en}: "),
    "deescalate": ("降为{g_zh}：", "de-escalated to {g_en}: "),
}


def _level_text(
    action: Action,
    rule: ResolvedRule,
    subject: Subject,
    grade_from: Grade,
    grade_to: Grade,
    q_v: str,
    threshold: float,
) -> tuple[str, str]:
    """`level_message` with the measure already written (`q_v`)."""
    wording = WORDING[rule.kind]
    # the threshold crossed: the new grade's going up, the left grade's going down
    g_thr = grade_to if grade_to > grade_from else grade_from
    if action == "resolve" and wording.cleared is not None:
        zh, en = wording.cleared
        body_zh, body_en = subject.name_zh + zh, f"{subject.name_en}: {en}"
    elif wording.body is not None:
        body_zh, body_en = wording.body(rule, subject, q_v, threshold, g_thr)
    else:
        m_zh, m_en = _measure(rule, subject, q_v)
        t_zh, t_en = _threshold(rule, g_thr, quantity(rule, subject, threshold))
        up = rule.direction > 0
        if action in ("resolve", "deescalate"):
            body_zh = f"{m_zh}，{'回落至' if up else '回升至'}{t_zh}{'以下' if up else '以上'}"
            body_en = f"{m_en}, back {'under' if up else 'over'} {t_en}"
        else:
            body_zh = f"{m_zh}，{'超过' if up else '低于'}{t_zh}"
            body_en = f"{m_en} {'exceeds' if up else 'is below'} {t_en}"
    if action == "resolve":
        n = rule.resolve_after
        return (
            f"告警解除：{body_zh}（连续 {n} 次读数正常）",
            f"resolved: {body_en} ({n} normal readings in a row)",
        )
    p_zh, p_en = _PREFIX[action]
    return (
        p_zh.format(g_zh=grade_to.label_zh) + body_zh,
        p_en.format(g_en=grade_to.label_en) + body_en,
    )


def level_message(
    action: Action,
    rule: ResolvedRule,
    subject: Subject,
    grade_from: Grade,
    grade_to: Grade,
    value: float,
    threshold: float,
) -> tuple[str, str]:
    """Explain a transition of a level, sensor or combination rule.

    Args:
        action: the transition's action.
        rule, subject: the slot.
        grade_from, grade_to: grades before and after.
        value: the measure at the reading (rule's unit: mm, ratio, mm/d, m/s ...).
        threshold: the threshold of `grade_to` (of `grade_from` on resolve), same unit.
    """
    q_v = quantity(rule, subject, value)
    return _level_text(action, rule, subject, grade_from, grade_to, q_v, threshold)


Template = tuple[list[str], list[str]]
"""A message in parts, Chinese and English, to be joined with the measure's text."""


def level_template(
    action: Action,
    rule: ResolvedRule,
    subject: Subject,
    grade_from: Grade,
    grade_to: Grade,
    threshold: float,
) -> Template | None:
    """`level_message` without its value: each part list joined with `quantity(rule, subject,
    value)` gives the same text. None if the rule's labels or the subject's names hold `VALUE` (never in practice):
    use `level_message` then."""
    texts = (
        subject.name_zh,
        subject.name_en,
        subject.unit,
        *(t for pair in rule.labels for t in pair),
    )
    if any(VALUE in text for text in texts):
        return None
    zh, en = _level_text(action, rule, subject, grade_from, grade_to, VALUE, threshold)
    return zh.split(VALUE), en.split(VALUE)


def late_message(
    rule: ResolvedRule, subject: Subject, grade: Grade, count: int, value: float, threshold: float
) -> tuple[str, str]:
    """Explain readings that arrived late (after newer ones) and reached a level."""
    m_zh, m_en = _measure(rule, subject, quantity(rule, subject, value))
    t_zh, t_en = _threshold(rule, grade, quantity(rule, subject, threshold))
    return (
        f"补传数据：{count} 条迟到读数达到{grade.label_zh}，最大为{m_zh}，超过{t_zh}；"
        f"按其自身时间评级，不重新打开告警",
        f"late data: {count} late readings reached {grade.label_en}, worst {m_en} over "
        f"{t_en}; graded at their own time, no alert re-opened",
    )


def offline_message(
    subject: Subject, grade: Grade, silent_s: float, periods: float
) -> tuple[str, str]:
    """Explain an offline alert: the device has been silent for `silent_s` seconds."""
    minutes = number(silent_s / 60.0)
    return (
        f"{grade.label_zh}告警：设备 {subject.device_code} 已 {minutes} 分钟无数据"
        f"（超过 {number(periods)} 个采样周期），判定离线",
        f"{grade.label_en} alert: device {subject.device_code} silent for {minutes} min "
        f"(more than {number(periods)} sampling periods), offline",
    )


def online_message(subject: Subject) -> tuple[str, str]:
    """Explain the end of an offline alert."""
    return (
        f"告警解除：设备 {subject.device_code} 恢复上报数据",
        f"resolved: device {subject.device_code} reports again",
    )


def baseline_message(subject: Subject, value: float) -> tuple[str, str]:
    """Explain an initial baseline taken from a series' first reading."""
    q = f"{number(value)} {subject.unit}".rstrip()
    return (
        f"{subject.name_zh}初始基准值 {q}（首个读数）",
        f"{subject.name_en}: initial baseline {q} (first reading)",
    )
