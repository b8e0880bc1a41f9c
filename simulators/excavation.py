"""A deep excavation's wall-top monitoring point drifting faster after heavy rain.

Used to show a gateway flushing buffered readings after a network cut: the samples carry their
own (past) timestamps, so cumulative change and rate are graded at the readings' own times.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

MS_PER_DAY = 86_400_000


def wall_top_drift(
    end_ms: int,
    *,
    days: float = 5.0,
    period_s: float = 3600.0,
    rate_before_mm_d: float = 0.8,
    rate_after_mm_d: float = 7.5,
) -> Iterator[tuple[int, dict[str, float]]]:
    """Hourly (by default) readings of a wall-top point up to `end_ms`, epoch ms.

    The horizontal displacement grows at `rate_before_mm_d` mm/d for the first half, then, after
    the rain, at `rate_after_mm_d` mm/d; the vertical displacement follows at a third of that.

    Args:
        end_ms: time of the last sample, epoch ms.
        days: length of the record, days.
        period_s: sampling period, s.
        rate_before_mm_d: horizontal drift rate before the rain, mm/d.
        rate_after_mm_d: horizontal drift rate after the rain, mm/d.
    """
    n = int(days * 86_400 / period_s)
    start_ms = end_ms - int((n - 1) * period_s * 1000)
    disp_h_mm = 0.0
    for i in range(n):
        t_ms = start_ms + int(i * period_s * 1000)
        rate_mm_d = rate_before_mm_d if i < n // 2 else rate_after_mm_d
        if i:
            disp_h_mm += rate_mm_d * period_s / 86_400
        # A little measurement noise (±0.1 mm), deterministic so runs compare.
        noise_mm = 0.1 * math.sin(i * 1.7)
        yield (
            t_ms,
            {
                "top_disp_h_mm": round(disp_h_mm + noise_mm, 2),
                "top_disp_v_mm": round(disp_h_mm / 3 + noise_mm / 2, 2),
            },
        )
