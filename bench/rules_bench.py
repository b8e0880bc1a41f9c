"""Rule engine throughput: every rule kind on, 10,000 series, batches of 5,000 readings.

The default stream is long: two days of excavation data measured after a day and a half of
warm-up, so that every rate rule has a reference reading a window (20 h) old and grades, and
the 3-in-a-row rule counts. `--short` is the former stream: 1.4 h of data, no rate graded.

Prints, measured in the same run: the engine's readings/s (median of repeats, by wall clock and
per CPU second of this process), how many rate readings were graded, the transitions by action
and rule kind, and two bare numpy ceilings on the same batches (a 4-grade threshold comparison,
a rate-of-change computation). With `--short`, or `--reference`, also the scalar reference
(`tests/rules/reference.py`) on a slice of the same stream, and other batch sizes.

    .venv/bin/python bench/rules_bench.py [--short] [--series 10000] [--batch 5000]
                                          [--repeats 5] [--shuffle] [--reference]

Only public names of `rules` are used, so the same script measures another code tree (e.g. a
checkout of an older commit) when copied into its `bench/`: it imports the `rules` package of
the tree it sits in, and prints its path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rules
from rules import Batch, Engine, ResolvedRule, SeriesInfo, load_profiles
from tests.rules.reference import Reference

T0_US = 1_764_000_000_000_000
US = 1_000_000
DAY_S = 86_400.0

# Per hazard kind: work params, and per metric (normal level, noise, drift per day, sampling s).
KINDS: dict[str, tuple[dict[str, object], dict[str, tuple[float, float, float, float]]]] = {
    "tower_crane": (
        {"rated_load_t": 8.0, "free_standing": False, "rated_curve": "2.5:8,16:8,30:4.1,50:2.3"},
        {
            "moment_ratio": (0.5, 0.15, 0.0, 10.0),
            "load_ratio": (0.4, 0.15, 0.0, 10.0),
            "load_t": (2.0, 0.8, 0.0, 10.0),
            "wind_speed_ms": (5.0, 2.0, 0.0, 10.0),
            "tilt_deg": (0.05, 0.02, 0.0, 10.0),
            "radius_m": (12.0, 3.0, 0.0, 10.0),
            "zone_event": (0.0, 0.0, 0.0, 10.0),
            "collision_event": (0.0, 0.0, 0.0, 10.0),
        },
    ),
    "excavation": (
        {
            "pit_grade": 1,
            "support_type": "bored_pile",
            "design_depth_m": 12.0,
            "strut_design_kn": 3000.0,
            "anchor_design_kn": 500.0,
        },
        {
            "top_disp_h_mm": (0.0, 0.3, 1.0, 60.0),
            "top_disp_v_mm": (0.0, 0.3, 0.5, 60.0),
            "deep_disp_mm": (0.0, 0.3, 0.8, 60.0),
            "settlement_mm": (0.0, 0.3, 0.8, 60.0),
            "strut_force_kn": (1000.0, 40.0, 0.0, 60.0),
            "anchor_force_kn": (480.0, 10.0, 0.0, 60.0),
            "water_level_m": (0.0, 0.02, 0.05, 60.0),
            "building_tilt_permille": (0.0, 0.02, 0.02, 60.0),
        },
    ),
    "high_formwork": (
        {"pole_design_kn": 40.0},
        {
            "settlement_mm": (0.0, 0.3, 1.0, 30.0),
            "disp_h_mm": (0.0, 0.3, 1.0, 30.0),
            "tilt_permille": (0.0, 0.1, 0.3, 30.0),
            "pole_force_kn": (20.0, 2.0, 0.0, 30.0),
        },
    ),
    "gas_pipeline": (
        {"nominal_pressure_kpa": 400.0},
        {"methane_lel_pct": (1.0, 1.0, 0.0, 30.0), "pressure_kpa": (400.0, 8.0, 0.0, 30.0)},
    ),
    "facade": (
        {},
        {
            "tilt_permille": (0.0, 0.1, 0.1, 60.0),
            "disp_mm": (0.0, 0.2, 0.3, 60.0),
            "accel_ms2": (0.0, 0.08, 0.0, 60.0),
        },
    ),
}
LONG_EXCAVATION_PERIOD_S = 600.0
"""Sampling period of the excavation devices in the long stream: an automated pit survey every
10 minutes. Every series gets about as many readings, so this is what makes the excavation data
span days while the cranes (10 s) span hours."""
LONG_WARMUP_DAYS = 1.5
"""Warm-up of the long stream, days of excavation data: more than the 20 h rate window for
every series (each gets ~216 ± 15 readings of the 120 a window needs)."""
LONG_MEASURED_DAYS = 2.0
"""Measured part of the long stream, days of excavation data."""


def registry(
    n_series: int, excavation_period_s: float | None = None
) -> tuple[list[SeriesInfo], NDArray[np.float64]]:
    """`n_series` series over the five kinds, one device per kind's metric set; their models
    (level, noise, drift per day, sampling period s), the excavation period replaced if given."""
    series: list[SeriesInfo] = []
    model: list[tuple[float, float, float, float]] = []
    device = 0
    while len(series) < n_series:
        for kind, (params, metrics) in KINDS.items():
            device += 1
            for metric, m in metrics.items():
                if len(series) == n_series:
                    break
                if kind == "excavation" and excavation_period_s is not None:
                    m = (*m[:3], excavation_period_s)
                sid = len(series) + 1
                series.append(
                    SeriesInfo(
                        sid, device, device, "BENCH", f"D{device}", kind, metric, params, m[3]
                    )
                )
                model.append(m)
    return series, np.array(model, dtype=np.float64)


def stream(model: NDArray[np.float64], n_batches: int, batch: int, seed: int = 7) -> list[Batch]:
    """Batches of readings: each series sampled at its period in turn, Gaussian noise plus a
    slow drift, and about 1 reading in 2,000 an excursion of 5 noise widths (alerts happen)."""
    rng = np.random.default_rng(seed)
    n = model.shape[0]
    clock = np.zeros(n)
    out = []
    for _ in range(n_batches):
        sidx = rng.integers(0, n, batch)
        period = model[sidx, 3]
        # each reading advances its series' clock by one sampling period
        order = np.argsort(sidx, kind="stable")
        counts = np.bincount(sidx, minlength=n)
        rank = np.arange(batch) - np.repeat(np.cumsum(counts) - counts, counts)
        t_s = np.empty(batch)
        t_s[order] = clock[sidx[order]] + (rank + 1) * period[order]
        clock += counts * model[:, 3]
        base, noise, drift = model[sidx, 0], model[sidx, 1], model[sidx, 2]
        value = base + drift * t_s / 86_400 + rng.normal(0, 1, batch) * noise
        spike = rng.random(batch) < 5e-4
        value[spike] += 5 * noise[spike] + 0.5 * np.abs(base[spike])
        event = (model[sidx, 0] == 0) & (model[sidx, 1] == 0)
        value[event] = (rng.random(event.sum()) < 1e-3).astype(float)
        out.append(Batch((sidx + 1).astype(np.int64), (T0_US + t_s * US).astype(np.int64), value))
    return out


def _window_s(rule: ResolvedRule) -> float:
    """A rate rule's window; the engine before the split kept its options in a mapping."""
    options = rule.options
    if isinstance(options, Mapping):
        return float(options.get("window_s", DAY_S))
    return float(getattr(options, "window_s", DAY_S))  # RateOptions (the one kind with a window)


def rate_gradings(
    series: list[SeriesInfo], engine: Engine, warmup: list[Batch], batches: list[Batch]
) -> tuple[int, int]:
    """How many readings of `batches` a rate rule grades, and how many it sees.

    A rate reading is graded when a checkpoint (the first reading of a window/4 slot) lies
    between 3 windows and 1 window before it. The stream samples each series without gaps, so
    that holds exactly when the series' first reading is at least a window older.
    """
    window_us = np.zeros(len(series) + 1, dtype=np.int64)
    for s in series:
        for rule in engine.rules_of(s.series_id):
            if rule.kind == "rate":
                w = int(_window_s(rule) * US)
                window_us[s.series_id] = max(w - w % 4, 4)  # as the engine rounds it
    first = np.full(len(series) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    for b in warmup + batches:
        np.minimum.at(first, b.series_id, b.time_us)
    graded = seen = 0
    for b in batches:
        has = window_us[b.series_id] > 0
        seen += int(has.sum())
        graded += int((has & (b.time_us - first[b.series_id] >= window_us[b.series_id])).sum())
    return graded, seen


def series_span_h(series: list[SeriesInfo], batches: list[Batch]) -> float:
    """Median over the excavation series of the time their readings in `batches` span, h."""
    first = np.full(len(series) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(len(series) + 1, np.iinfo(np.int64).min, dtype=np.int64)
    for b in batches:
        np.minimum.at(first, b.series_id, b.time_us)
        np.maximum.at(last, b.series_id, b.time_us)
    exc = [s.series_id for s in series if s.hazard_kind == "excavation"]
    return float(np.median(last[exc] - first[exc])) / 3.6e9


def run_engine(
    series: list[SeriesInfo], warmup: list[Batch], batches: list[Batch]
) -> tuple[float, float, Counter[str], Counter[str]]:
    """Readings/s by wall clock and by this process's CPU time, and the transitions made (by
    action, by rule kind), after `warmup` batches (every series seen, windows filled).

    Only `evaluate` is timed; the transitions are counted between the calls and dropped, as
    the ingest does once it has recorded them (keeping them all would make the garbage
    collector walk them again and again).
    """
    engine = Engine(series, load_profiles())
    for b in warmup:
        engine.evaluate(b, int(b.time_us.max()))
    kind_of = {(s.series_id, r.rule): r.kind for s in series for r in engine.rules_of(s.series_id)}
    actions: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    wall = cpu = 0.0
    for b in batches:
        now = int(b.time_us.max())
        start, start_cpu = time.perf_counter(), time.process_time()
        out = engine.evaluate(b, now)
        wall += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        actions.update(t.action for t in out)
        kinds.update(kind_of.get((t.series_id, t.rule), t.rule) for t in out)
    n = sum(len(b) for b in batches)
    return n / wall, n / cpu, actions, kinds


def run_reference(series: list[SeriesInfo], warmup: list[Batch], batches: list[Batch]) -> float:
    reference = Reference(Engine(series, load_profiles()))
    for b in warmup:
        reference.evaluate(b)
    start = time.perf_counter()
    for b in batches:
        reference.evaluate(b)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def ceilings(batches: list[Batch]) -> tuple[float, float]:
    """Bare numpy on the same batches: a 4-grade threshold rule; a rate-of-change rule."""
    thr = np.array([0.7, 0.8, 0.9, 1.0])
    start = time.perf_counter()
    for b in batches:
        np.count_nonzero(b.value[:, None] >= thr, axis=1)
    threshold = sum(len(b) for b in batches) / (time.perf_counter() - start)
    start = time.perf_counter()
    for b in batches:
        order = np.argsort(b.series_id, kind="stable")
        s, t, v = b.series_id[order], b.time_us[order], b.value[order]
        same = np.r_[False, s[1:] == s[:-1]]
        dt = np.diff(t, prepend=t[0]) / 86_400e6
        rate = np.where(same, np.diff(v, prepend=v[0]) / np.where(dt > 0, dt, 1), np.nan)
        np.count_nonzero(np.abs(rate)[:, None] >= thr, axis=1)
    rate_s = sum(len(b) for b in batches) / (time.perf_counter() - start)
    return threshold, rate_s


def batch_counts(args: argparse.Namespace, size: int) -> tuple[int, int]:
    """(warm-up, measured) batches of `size` readings for the chosen stream."""
    if args.short:
        return args.warmup * args.batch // size, max(args.batches * args.batch // size, 1)
    # every series gets about one reading per `n_series` readings of the stream
    per_day = DAY_S / LONG_EXCAVATION_PERIOD_S * args.series
    return (
        int(LONG_WARMUP_DAYS * per_day) // size,
        int(LONG_MEASURED_DAYS * per_day) // size,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--short", action="store_true", help="the 1.4 h stream (no rate graded), as before"
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--batches", type=int, default=100, help="--short: measured batches")
    parser.add_argument("--warmup", type=int, default=10, help="--short: warm-up batches")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shuffle", action="store_true", help="shuffle the rows of each batch")
    parser.add_argument(
        "--scaling",
        type=int,
        nargs="*",
        default=None,
        help="also measure these batch sizes (default 1000 20000 with --short, none otherwise)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also time the scalar reference (always with --short; slow on the long stream)",
    )
    parser.add_argument("--reference-batches", type=int, default=4)
    args = parser.parse_args()
    scaling = args.scaling if args.scaling is not None else [1000, 20000] if args.short else []
    series, model = registry(
        args.series, excavation_period_s=None if args.short else LONG_EXCAVATION_PERIOD_S
    )
    n_warmup, n_batches = batch_counts(args, args.batch)
    everything = stream(model, n_warmup + n_batches, args.batch)
    if args.shuffle:  # a device's readings out of time order within a batch: the full sort
        rng = np.random.default_rng(11)
        everything = [
            Batch(b.series_id[p], b.time_us[p], b.value[p])
            for b in everything
            for p in [rng.permutation(len(b))]
        ]
    warmup, batches = everything[:n_warmup], everything[n_warmup:]
    probe = Engine(series, load_profiles())
    kinds = Counter(r.kind for s in series for r in probe.rules_of(s.series_id))
    print(f"rules package: {Path(rules.__file__).resolve().parent}")
    print(f"series {len(series)}, rule slots {sum(kinds.values())}: {dict(sorted(kinds.items()))}")
    exc_s = next(s.sampling_period_s for s in series if s.hazard_kind == "excavation")
    print(
        f"stream: {n_warmup} warm-up + {n_batches} measured batches x {args.batch} readings; "
        f"excavation sampled every {exc_s:g} s: {series_span_h(series, batches):.1f} h of its "
        f"data measured (median per series)"
    )
    graded, seen = rate_gradings(series, probe, warmup, batches)
    print(f"rate gradings: {graded} of {seen} rate-rule readings ({graded / max(seen, 1):.0%})")
    # interleaved, so that each figure and its ceilings see the same load on the shared machine
    engine_rates, engine_cpu, ref_rates = [], [], []
    ceil = []
    actions: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    for i in range(args.repeats):
        r, c, actions, by_kind = run_engine(series, warmup, batches)
        engine_rates.append(r)
        engine_cpu.append(c)
        ceil.append(ceilings(batches))
        if (args.short or args.reference) and i % 2 == 0:
            ref_rates.append(run_reference(series, warmup, batches[: args.reference_batches]))
    engine_rate = statistics.median(engine_rates)
    thr_rate = statistics.median(c[0] for c in ceil)
    rate_rate = statistics.median(c[1] for c in ceil)
    sized = []
    for size in scaling:
        cut, n_more = batch_counts(args, size)
        more = stream(model, cut + n_more, size, seed=13)
        best = max(
            run_engine(series, more[:cut], more[cut:])[1] for _ in range(max(1, args.repeats // 2))
        )
        sized.append((size, best))
    print(f"transitions per run: {dict(sorted(actions.items()))}")
    print(f"  by rule kind: {dict(sorted(by_kind.items()))}")
    print(
        f"engine, every rule kind:      {engine_rate / 1e6:8.2f} M readings/s "
        f"(median of {args.repeats}: {', '.join(f'{x / 1e6:.2f}' for x in engine_rates)})"
    )
    print(
        f"engine, per CPU second:       {statistics.median(engine_cpu) / 1e6:8.2f} M readings/s "
        f"(median of {args.repeats}: {', '.join(f'{x / 1e6:.2f}' for x in engine_cpu)}; "
        f"process time; the machine is shared, load {os.getloadavg()[0]:.1f})"
    )
    for size, rate in sized:
        print(f"engine at batches of {size:>6}:  {rate / 1e6:8.2f} M readings/s (best, CPU time)")
    if ref_rates:
        ref_rate = statistics.median(ref_rates)
        print(
            f"scalar reference:             {ref_rate / 1e6:8.3f} M readings/s "
            f"-> engine is {engine_rate / ref_rate:.0f}x the reference"
        )
    print(
        f"numpy 4-grade threshold only: {thr_rate / 1e6:8.2f} M readings/s "
        f"-> engine at {engine_rate / thr_rate:.0%} of it"
    )
    print(
        f"numpy rate-of-change only:    {rate_rate / 1e6:8.2f} M readings/s "
        f"-> engine at {engine_rate / rate_rate:.0%} of it"
    )


if __name__ == "__main__":
    main()
