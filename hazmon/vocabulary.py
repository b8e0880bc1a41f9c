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
"""一般隐患 / 重大事故隐患."""
HazardAction = Literal[
    "register", "raise_level", "assign", "rectify", "verify", "reject", "close", "supervise"
]
"""Every action of `hazard_events.action`."""

WebhookKind = Literal["generic", "wecom", "dingtalk", "feishu"]
"""Receivers of notifications: signed generic JSON, 企业微信, 钉钉, 飞书 robots."""
WEBHOOK_KINDS: tuple[WebhookKind, ...] = get_args(WebhookKind)
