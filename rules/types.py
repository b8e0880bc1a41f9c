"""Value types shared by the rule engine and its callers: grades, series, batches, transitions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hazmon.vocabulary import EngineAction
from hazmon.vocabulary import Grade as Grade  # re-exported: rules modules import it from here

Action = EngineAction
"""What a transition does to the alert of one (series, rule): `hazmon.vocabulary.EngineAction`."""


class RulesError(Exception):
    """Root of the errors raised by the rule engine."""


class ProfileError(RulesError, ValueError):
    """A threshold profile or an override is invalid; raised when it is loaded, never later.

    Attributes:
        where: the file, work or series the bad value came from.
        reason: what is wrong with it.
        field: the work parameter at fault when a design value is the problem, else None.
    """

    def __init__(self, where: str, reason: str, field: str | None = None) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """One monitored series (a metric of a device) with what the rules need to know about it.

    Attributes:
        series_id: `series.id`.
        device_id: `devices.id`; offline alerts are per device.
        work_id: `works.id`; per-work overrides and cross-series rules (crane and wind) use it.
        site_code: the site's code; ingest workers own disjoint sets of sites.
        device_code: the device's code, quoted in messages.
        hazard_kind: a hazard kind of the catalogue, e.g. 'excavation'.
        metric: a metric of that kind, e.g. 'top_disp_h_mm'.
        work_params: the work's design parameters (pit grade, design depth H, rated load, ...).
        sampling_period_s: the device's nominal sampling period, seconds (> 0).
    """

    series_id: int
    device_id: int
    work_id: int
    site_code: str
    device_code: str
    hazard_kind: str
    metric: str
    work_params: Mapping[str, Any] = field(default_factory=dict)
    sampling_period_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.sampling_period_s > 0:
            raise ProfileError(f"series {self.series_id}", "sampling_period_s must be > 0")


@dataclass(frozen=True, slots=True)
class Batch:
    """Readings to evaluate, as three columns of equal length.

    Rows may come in any order and may repeat a (series, time) pair: the first row of a pair wins,
    as in the `readings` table (unique on series and time).

    Attributes:
        series_id: `series.id` of each reading.
        time_us: reading time, epoch microseconds UTC.
        value: reading value in the metric's catalogue unit; NaN/Inf rows are ignored.
    """

    series_id: NDArray[np.int64]
    time_us: NDArray[np.int64]
    value: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = self.series_id.shape[0]
        if self.time_us.shape != (n,) or self.value.shape != (n,):
            raise ValueError("Batch columns must be one-dimensional and of equal length")

    def __len__(self) -> int:
        return int(self.series_id.shape[0])


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of the alert of a (series, rule), with its explanation.

    Attributes:
        series_id: the series; for offline alerts the device's first series.
        rule: the rule id from the profile, e.g. 'cumulative', 'moment_ratio', 'offline'.
        action: see `Action`.
        grade_from: the alert's grade before (NORMAL if none was open).
        grade_to: the grade after (NORMAL when resolved). For `late`: the grade of the late readings.
        time_us: time of the reading that caused it (for offline: the evaluation time), epoch µs.
        value: the graded quantity at that reading (e.g. cumulative change in mm, ratio, mm/d).
        threshold: the threshold of `grade_to` (of `grade_from` when resolving), same unit.
        message_zh: explanation in Chinese.
        message_en: the same in English.
    """

    series_id: int
    rule: str
    action: Action
    grade_from: Grade
    grade_to: Grade
    time_us: int
    value: float
    threshold: float
    message_zh: str
    message_en: str


@dataclass(frozen=True, slots=True)
class Override:
    """One row of the `thresholds` table: a per-work or per-series change of a rule.

    Attributes:
        rule: the rule id it changes.
        metric: the metric of that rule.
        params: the override object (see `rules.checks.check_override`).
        work_id: set for a per-work override.
        series_id: set for a per-series override (applied after the work's).
    """

    rule: str
    metric: str
    params: Mapping[str, Any]
    work_id: int | None = None
    series_id: int | None = None
