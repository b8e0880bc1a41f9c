"""A tower crane that lifts ever heavier loads until its moment crosses 90 % and then 100 % of rated."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CraneSpec:
    """The crane's ratings (from its registry entry)."""

    rated_load_t: float = 8.0
    rated_moment_tm: float = 160.0


@dataclass(frozen=True, slots=True)
class CraneSample:
    """One sample of the crane's monitor, named like the catalogue's metrics."""

    t_s: float
    load_t: float
    radius_m: float
    height_m: float
    slew_deg: float
    wind_speed_ms: float

    def values(self, spec: CraneSpec) -> dict[str, float]:
        """The telemetry `values` object for this sample."""
        moment_tm = self.load_t * self.radius_m
        return {
            "load_t": round(self.load_t, 3),
            "load_ratio": round(self.load_t / spec.rated_load_t, 4),
            "moment_ratio": round(moment_tm / spec.rated_moment_tm, 4),
            "radius_m": round(self.radius_m, 2),
            "height_m": round(self.height_m, 2),
            "slew_deg": round(self.slew_deg, 1),
            "wind_speed_ms": round(self.wind_speed_ms, 2),
        }


# Peak moment of each successive lift as a share of rated: normal work, a lift over the 90 %
# pre-warning, one over the 100 % alarm, then back to normal so the alerts resolve.
LIFT_PEAKS = (0.55, 0.7, 0.93, 1.04, 0.6, 0.5, 0.5, 0.5)


def crane_lifts(
    spec: CraneSpec, *, period_s: float = 1.0, samples_per_lift: int = 12
) -> Iterator[CraneSample]:
    """Samples of one lift cycle after another: hook up, travel out, hold, come back.

    Args:
        spec: the crane's ratings.
        period_s: sampling period, s.
        samples_per_lift: samples in each lift.
    """
    t_s = 0.0
    for peak in LIFT_PEAKS:
        load_t = min(spec.rated_load_t * 0.8, spec.rated_load_t * peak)
        peak_radius_m = peak * spec.rated_moment_tm / load_t
        for i in range(samples_per_lift):
            phase = math.sin(math.pi * i / (samples_per_lift - 1))
            # Out to the peak radius in the middle of the lift: the moment rises and falls.
            radius_m = 3.0 + (peak_radius_m - 3.0) * phase
            yield CraneSample(
                t_s=t_s,
                load_t=load_t if 0 < i < samples_per_lift - 1 else 0.0,
                radius_m=radius_m,
                height_m=5.0 + 30.0 * phase,
                slew_deg=(t_s * 3.0) % 360.0,
                wind_speed_ms=4.0 + 1.5 * math.sin(t_s / 17.0),
            )
            t_s += period_s
