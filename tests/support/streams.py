"""A small registry exercising every rule kind, with short windows so short streams reach them."""

from __future__ import annotations

from rules import Override, SeriesInfo

SERIES = [
    SeriesInfo(1, 1, 1, "S", "CR1", "tower_crane", "moment_ratio", {}, 1.0),
    SeriesInfo(
        2,
        1,
        1,
        "S",
        "CR1",
        "tower_crane",
        "load_t",
        {"rated_load_t": 10.0, "rated_curve": "5:10,20:10,40:4"},
        1.0,
    ),
    SeriesInfo(3, 1, 1, "S", "CR1", "tower_crane", "wind_speed_ms", {}, 1.0),
    SeriesInfo(4, 1, 1, "S", "CR1", "tower_crane", "tilt_deg", {"free_standing": True}, 1.0),
    SeriesInfo(
        5,
        2,
        2,
        "S",
        "PIT1",
        "excavation",
        "top_disp_h_mm",
        {"pit_grade": 1, "support_type": "bored_pile", "design_depth_m": 12.0},
        10.0,
    ),
    SeriesInfo(
        6, 2, 2, "S", "PIT1", "excavation", "anchor_force_kn", {"anchor_design_kn": 100.0}, 10.0
    ),
    SeriesInfo(
        7, 3, 3, "S", "GAS1", "gas_pipeline", "pressure_kpa", {"nominal_pressure_kpa": 100.0}, 5.0
    ),
    SeriesInfo(8, 1, 1, "S", "CR1", "tower_crane", "radius_m", {}, 1.0),
]
"""One series per interesting rule mix: crane ratio/absolute/jump/combination, pit cumulative/
rate/consecutive/stuck/jump, anchor tension (downward), gas pressure band and stuck, crane load
against its rated load curve at the radius of series 8."""

OVERRIDES = [
    Override("moment_ratio", "moment_ratio", {"debounce": 2, "resolve_after": 2}, work_id=1),
    Override("lifting_in_wind", "load_t", {"max_wind_age_s": 30}, work_id=1),
    Override("load_curve", "load_t", {"max_radius_age_s": 20}, work_id=1),
    Override("wall_top_h", "top_disp_h_mm", {"debounce": 2, "resolve_after": 2}, work_id=2),
    Override("wall_top_h_rate", "top_disp_h_mm", {"window_s": 40}, work_id=2),
    Override("wall_top_h_rate_3x", "top_disp_h_mm", {"window_s": 40, "period_s": 20}, work_id=2),
    Override("wall_top_h_stuck", "top_disp_h_mm", {"count": 3}, work_id=2),
    Override("wall_top_h_jump", "top_disp_h_mm", {"levels": {"blue": 150}}, series_id=5),
    Override("pressure_stuck", "pressure_kpa", {"count": 3}, work_id=3),
]

VALUES = {
    1: [0.5, 0.88, 0.9, 0.95, 1.0, 1.05],
    2: [0.0, 0.05, 2.0, 9.5, 10.5],
    3: [3.0, 8.0, 10.8, 11.0, 14.0],
    4: [0.0, 0.1, 0.2, 0.25, -0.3, 1.5],
    5: [0.0, 5.0, 14.0, 20.0, 25.0, 31.0, 45.0, 200.0],
    6: [100.0, 95.0, 89.0, 79.0, 60.0],
    7: [100.0, 85.0, 112.0, 125.0, 60.0, 140.0],
    8: [5.0, 20.0, 30.0, 38.0, 45.0],
}
"""Values per series that straddle its thresholds (and repeat, for the stuck rule)."""
