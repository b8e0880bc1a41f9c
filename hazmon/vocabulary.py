"""The words every part of hazmon shares, declared once: grades, transition actions, alert and
hazard states, webhook kinds, with their Chinese and English labels (Chinese first, as an
inspector reads them)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Literal, get_args


class Grade(IntEnum):
    """Early-warning grade, the Chinese colour scale: blue (IV) is the lowest, red (I) the highest."""

    NORMAL = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def code(self) -> str:
        """The grade's name in profiles and the API: 'normal', 'blue', ... 'red'."""
        return self.name.lower()

    @property
    def label_zh(self) -> str:
        """The grade as written in Chinese notices, e.g. '橙色（II级）'."""
        return (
            _COLOUR_ZH[self] if self is Grade.NORMAL else f"{_COLOUR_ZH[self]}（{_LEVEL[self]}级）"
        )

    @property
    def label_en(self) -> str:
        """The grade in English, e.g. 'orange (II)'."""
        return self.code if self is Grade.NORMAL else f"{self.code} ({_LEVEL[self]})"

    @property
    def warning_zh(self) -> str:
        """The warning of this grade as a message title says it, e.g. '橙色预警（II级）'."""
        return "正常" if self is Grade.NORMAL else f"{_COLOUR_ZH[self]}预警（{_LEVEL[self]}级）"

    @property
    def colour_zh(self) -> str:
        """The colour alone, e.g. '橙色'."""
        return _COLOUR_ZH[self]


_COLOUR_ZH = {
    Grade.NORMAL: "正常",
    Grade.BLUE: "蓝色",
    Grade.YELLOW: "黄色",
    Grade.ORANGE: "橙色",
    Grade.RED: "红色",
}
_LEVEL = {Grade.BLUE: "IV", Grade.YELLOW: "III", Grade.ORANGE: "II", Grade.RED: "I"}

GRADES_BY_CODE: Mapping[str, Grade] = {g.code: g for g in Grade if g is not Grade.NORMAL}
"""The alert grades by their code ('blue' ... 'red'), as profiles and overrides name them."""

EngineAction = Literal["open", "escalate", "deescalate", "resolve", "suspect", "late", "baseline"]
"""What a rule-engine transition does to the alert of one (series, rule).

`open` starts a structural or offline alert; `suspect` starts a sensor-fault alert (the series'
readings are suspect, no structural alarm); `escalate`/`deescalate` change the grade of the open
alert; `resolve` ends it; `late` records readings that arrived after newer ones had been graded
(a buffered gateway flush): they are graded at their own time and never re-open an alert;
`baseline` is not an alert change: a cumulative rule took the series' first reading as its
initial baseline, stored as a dated record.
"""
TransitionAction = Literal[EngineAction, "acknowledge"]
"""Every action of `alert_transitions.action`: the engine's, and a person's acknowledgement."""

ACTION_LABELS: Mapping[str, tuple[str, str]] = {
    "open": ("新报警", "opened"),
    "escalate": ("升级", "escalated"),
    "deescalate": ("降级", "de-escalated"),
    "resolve": ("已恢复", "resolved"),
    "acknowledge": ("已确认", "acknowledged"),
    "suspect": ("传感器疑似故障", "sensor suspect"),
    "late": ("补传数据超限", "late readings over the limit"),
    "baseline": ("初始基准值", "initial baseline"),
}
"""Each transition action as (Chinese, English) for messages and printouts."""

AlertState = Literal["open", "acknowledged", "resolved"]
"""`alerts.state`: open and acknowledged alerts are active."""
ALERT_STATES: tuple[AlertState, ...] = get_args(AlertState)

HazardState = Literal["registered", "assigned", "rectified", "verified", "closed"]
"""Where a hazard (隐患) stands in the closed loop (`registry.lifecycle`)."""
HAZARD_STATES: tuple[HazardState, ...] = get_args(HazardState)
HazardLevel = Literal["general", "major"]
"""一般隐患 / 重大事故隐患 (建质规〔2022〕2号)."""
HAZARD_LEVELS: tuple[HazardLevel, ...] = get_args(HazardLevel)
HazardSource = Literal["sensor", "inspection", "report"]
"""Where a hazard was found: a monitoring alarm, an inspection (巡查), a report (上报)."""
HAZARD_SOURCES: tuple[HazardSource, ...] = get_args(HazardSource)
HazardAction = Literal[
    "register",
    "raise_level",
    "plan",
    "assign",
    "rectify",
    "verify",
    "verify_override",
    "reject",
    "close",
    "supervise",
    "evidence",
    "remind",
    "overdue",
    "escalate",
]
"""Every action of `hazard_events.action`.

The people's actions (`registry.lifecycle`): `register`, `plan` (the rectification plan drafted
or revised), `assign`, `rectify`, `verify` (or `verify_override`: verified while the hazard's
alert is still open, by a supervisor, with a reason), `reject`, `close`, `supervise`, `evidence`
(a file attached). The engine's: `raise_level`. The deadline sweep's (`registry.deadlines`),
each written once: `remind` and `overdue` (data `{"due": iso, "kind": "rectification" |
"verification"}`), `escalate` (data `{"to_region": "<2/4/6-digit prefix>", "reason": ...,
"due", "kind"}`). The notifier turns `assign`, `remind`, `overdue`, `escalate`, `supervise` and
the `register` of a major hazard into messages.
"""
HAZARD_ACTIONS: tuple[HazardAction, ...] = get_args(HazardAction)
DeadlineKind = Literal["rectification", "verification"]
"""What a deadline is for: the rectification (整改期限) or its verification (复查验收期限)."""
SupervisionLevel = Literal["province", "city", "county"]
"""The level of the authority that lists a hazard for supervision (挂牌督办): 省、市、县."""
SUPERVISION_LEVELS: tuple[SupervisionLevel, ...] = get_args(SupervisionLevel)
SUPERVISION_PREFIX_DIGITS: Mapping[SupervisionLevel, int] = {
    "province": 2,
    "city": 4,
    "county": 6,
}
"""How many digits of a GB/T 2260 code name a division of each level."""
InspectionAction = Literal["inspection_missed"]
"""Every action of `inspection_events.action`: a planned inspection not recorded in its window."""
InspectionResult = Literal["pass", "fail", "na"]
"""One checklist item's result: 合格, 不合格 (a hazard may be registered from it), 不适用."""

HAZARD_STATE_LABELS: Mapping[str, tuple[str, str]] = {
    "registered": ("已登记", "registered"),
    "assigned": ("整改中", "assigned"),
    "rectified": ("待复查", "rectified"),
    "verified": ("已验收", "verified"),
    "closed": ("已销号", "closed"),
}
HAZARD_LEVEL_LABELS: Mapping[str, tuple[str, str]] = {
    "general": ("一般隐患", "general"),
    "major": ("重大事故隐患", "major"),
}
HAZARD_SOURCE_LABELS: Mapping[str, tuple[str, str]] = {
    "sensor": ("监测报警", "sensor alarm"),
    "inspection": ("巡查检查", "inspection"),
    "report": ("上报", "report"),
}
HAZARD_ACTION_LABELS: Mapping[str, tuple[str, str]] = {
    "register": ("登记", "registered"),
    "raise_level": ("升为重大隐患", "raised to major"),
    "plan": ("整改方案", "rectification plan"),
    "assign": ("下达整改", "assigned"),
    "rectify": ("整改完成", "rectified"),
    "verify": ("复查验收", "verified"),
    "verify_override": ("报警未消除验收（督办人确认）", "verified over an open alert"),
    "reject": ("复查不合格", "rejected"),
    "close": ("销号", "closed out"),
    "supervise": ("挂牌督办", "listed supervision"),
    "evidence": ("上传佐证", "evidence attached"),
    "remind": ("期限提醒", "deadline reminder"),
    "overdue": ("已逾期", "overdue"),
    "escalate": ("逾期升级督办", "escalated"),
}
"""Each hazard state, level, source and action as (Chinese, English) for lists and messages."""
DEADLINE_KIND_LABELS: Mapping[str, tuple[str, str]] = {
    "rectification": ("整改期限", "rectification deadline"),
    "verification": ("复查验收期限", "verification deadline"),
}

WebhookKind = Literal["generic", "wecom", "dingtalk", "feishu"]
"""Receivers of notifications: signed generic JSON, 企业微信, 钉钉, 飞书 robots."""
WEBHOOK_KINDS: tuple[WebhookKind, ...] = get_args(WebhookKind)
