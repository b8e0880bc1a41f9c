"""Bilingual explanations of transitions: Chinese first, English beside.

Example: '围护墙顶部水平位移累计变化 31.2 mm，超过一级基坑预警值 30 mm' /
'wall-top horizontal displacement: cumulative change 31.2 mm exceeds the grade-1 pit alarm value
30 mm'.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.profiles import ResolvedRule
from rules.types import Action, Grade


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


def quantity(rule: ResolvedRule, subject: Subject, x: float) -> str:
    """The graded measure of `rule` with its unit (the same text in both languages)."""
    if rule.kind in ("ratio", "deviation", "rated_curve") or subject.unit == "1":
        return f"{number(x * 100)}%"
    if rule.kind in ("rate", "consecutive"):
        return f"{number(x)} {subject.unit}/d"
    return f"{number(x)} {subject.unit}".rstrip()


def _measure(rule: ResolvedRule, subject: Subject, q: str) -> tuple[str, str]:
    """The measure `q` (formatted by `quantity`) named, in Chinese and English."""
    if rule.kind == "cumulative":
        return f"{subject.name_zh}累计变化 {q}", f"{subject.name_en}: cumulative change {q}"
    if rule.kind in ("rate", "consecutive"):
        return f"{subject.name_zh}变化速率 {q}", f"{subject.name_en}: rate {q}"
    if rule.kind == "ratio":
        return f"{subject.name_zh}为设计值的 {q}", f"{subject.name_en} at {q} of design"
    if rule.kind == "rated_curve":
        return (
            f"{subject.name_zh}为当前幅度额定值的 {q}",
            f"{subject.name_en} at {q} of the rated load at the current radius",
        )
    if rule.kind == "deviation":
        return f"{subject.name_zh}偏离额定值 {q}", f"{subject.name_en} {q} off nominal"
    return f"{subject.name_zh} {q}", f"{subject.name_en} {q}"


def _threshold(rule: ResolvedRule, grade: Grade, q: str) -> tuple[str, str]:
    """The threshold of `grade` with its label, `q` formatted by `quantity`."""
    label_zh, label_en = rule.labels[grade - 1]
    return f"{label_zh} {q}", f"the {label_en} ({q})"


_CLEARED = {
    "jump": ("读数恢复连续", "readings consistent again"),
    "stuck": ("读数恢复变化", "readings change again"),
    "crane_wind": (
        "：大风中的吊装已停止或风速已回落",
        "lifting in high wind stopped or the wind dropped",
    ),
    "consecutive": (
        "变化速率不再连续超过预警值的规定比例",
        "rate no longer over the share in a row",
    ),
}
"""How a one-level rule says it cleared (its own condition no longer holds)."""

_PREFIX = {
    "open": ("{g_zh}告警：", "{g_en} alert: "),
    "suspect": (
        "传感器疑似故障，数据标记为可疑：",
        "sensor suspected faulty, series marked suspect: ",
    ),
    "escalate": ("升级为{g_zh}：", "escalated to {g_en}: "),
    "deescalate": ("降为{g_zh}：", "de-escalated to {g_en}: "),
}


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
        threshold: the threshold of `grade_to` (of `grade_from` on resolve).
    """
    q_v = quantity(rule, subject, value)
    # the threshold crossed: the new grade's going up, the left grade's going down
    g_thr = grade_to if grade_to > grade_from else grade_from
    if rule.kind == "jump":
        t_zh, t_en = _threshold(rule, Grade.BLUE, quantity(rule, subject, threshold))
        body_zh = f"{subject.name_zh}相邻读数突变 {q_v}，超过{t_zh}"
        body_en = f"{subject.name_en} jumped by {q_v} between readings, over {t_en}"
    elif rule.kind == "stuck":
        n = int(rule.options.get("count", 0))
        body_zh = f"{subject.name_zh}连续 {n} 次读数不变（{q_v}）"
        body_en = f"{subject.name_en} stuck at {q_v} for {n} readings"
    elif rule.kind == "crane_wind":
        body_zh = (
            f"风速 {number(value)} m/s 超过{rule.labels[3][0]}（{number(threshold)} m/s）时"
            f"塔机仍在吊装"
        )
        body_en = (
            f"the crane was lifting while the wind was {number(value)} m/s, over "
            f"the {rule.labels[3][1]} ({number(threshold)} m/s)"
        )
    elif rule.kind == "consecutive":
        n = int(rule.options.get("count", 0))
        share = float(rule.options.get("share", 1.0))
        q_limit = quantity(rule, subject, threshold / share)
        label_zh, label_en = rule.labels[g_thr - 1]
        body_zh = (
            f"{subject.name_zh}变化速率连续 {n} 个周期超过{label_zh} {q_limit}的 "
            f"{number(share * 100)}%，本次 {q_v}"
        )
        body_en = (
            f"{subject.name_en}: rate over {number(share * 100)} % of the {label_en} "
            f"({q_limit}) for {n} periods in a row, now {q_v}"
        )
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
    if action == "resolve" and rule.kind in _CLEARED:
        zh, en = _CLEARED[rule.kind]
        body_zh, body_en = subject.name_zh + zh, f"{subject.name_en}: {en}"
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
