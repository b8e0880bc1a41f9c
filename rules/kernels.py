"""Vectorised building blocks of the engine: arrays in, arrays of the same length out.

Every function works on rows sorted by segment (a series or an alert slot) and then by time,
with the state carried in from the previous batch given per row. No Python loop runs per row.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_Col = TypeVar("_Col", NDArray[np.float64], NDArray[np.int64])

LEVELS: NDArray[np.int64] = np.arange(1, 5, dtype=np.int64)
"""Grades BLUE..RED as numbers, for broadcasting one column per grade."""
_LEVEL_COL = LEVELS[:, None]
_ROW_OFFSET = np.arange(4, dtype=np.int64)[:, None]


any_true = np.logical_or.reduce
"""Whether any element is true: `a.any()` without its Python wrapper (called a dozen times a
batch)."""
all_true = np.logical_and.reduce
"""Whether every element is true: `a.all()` without its Python wrapper."""


def segment_starts(key: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True where a row starts a new segment of `key` (rows sorted by key)."""
    starts = np.empty(key.shape[0], dtype=np.bool_)
    if key.shape[0]:
        starts[0] = True
        np.not_equal(key[1:], key[:-1], out=starts[1:])
    return starts


def segment_ends(starts: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """True where a row ends its segment, given the segment starts."""
    ends = np.empty_like(starts)
    if starts.shape[0]:
        ends[:-1] = starts[1:]
        ends[-1] = True
    return ends


def first_index(starts: NDArray[np.bool_]) -> NDArray[np.int64]:
    """For each row, the index of the first row of its segment."""
    idx = np.arange(starts.shape[0], dtype=np.int64)
    return np.maximum.accumulate(np.where(starts, idx, 0))


def previous(values: _Col, first: NDArray[np.int64], carry: _Col) -> _Col:
    """Each row's predecessor in its segment; the first row of a segment takes `carry`.

    Args:
        values: per-row values.
        first: the first row of each segment (`segment_starts(key).nonzero()[0]`).
        carry: per segment, the value before its first row (the last of the previous batch).
    """
    prev = np.empty_like(values)
    if values.shape[0]:
        prev[1:] = values[:-1]
        prev[first] = carry
    return prev


def run_lengths(
    cond: NDArray[np.bool_],
    first: NDArray[np.int64],
    carry: NDArray[np.int64],
    cap: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Length of the run of true `cond` ending at each row, continuing the carried run.

    Args:
        cond: (n,) conditions, rows sorted by segment and time; or (k, n): k conditions of
            each row, one row of the array per condition (each accumulates contiguously).
        first: (n,) index of the first row of each row's segment.
        carry: same shape as `cond`: the run length at the end of the previous batch.
        cap: (n,) runs are capped here (the longest run any rule needs), so state stays small
            and a replay of the last `cap` readings restores it exactly.

    Returns:
        Run lengths, same shape as `cond`, each at most `cap`.
    """
    idx = np.arange(cond.shape[-1], dtype=np.int64)
    last_false = np.maximum.accumulate(np.where(cond, -1, idx), axis=-1)
    run = np.where(last_false >= first, idx - last_false, idx - first + 1 + carry)
    return np.minimum(run, cap, out=run)


def grade_pair(
    measure: NDArray[np.float64], thresholds: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Number of thresholds reached, 0 (normal) .. 4 (red), against two sets of four.

    Args:
        measure: (n,) measure, signed so that larger is worse (NaN reaches nothing).
        thresholds: (n, 8) per row: four ascending thresholds BLUE..RED (+inf if unused),
            then the same less hysteresis.

    Returns:
        (grade against the first four, grade against the second four).
    """
    reached = measure[:, None] >= thresholds  # (n, 8) bool, one byte each
    # each group of four bytes read as one uint32; multiplying by 0x01010101 adds the four
    # bytes into the top byte: the count of thresholds reached, in two operations
    packed = np.ascontiguousarray(reached).view(np.uint32)
    counts = (packed * np.uint32(0x01010101)) >> np.uint32(24)
    return counts[:, 0].astype(np.int64), counts[:, 1].astype(np.int64)


def count_true(cond: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Per row, how many of the (n, 8k) conditions hold (a faster `count_nonzero(axis=1)`)."""
    packed = np.ascontiguousarray(cond).view(np.uint64)
    counts = (packed * np.uint64(0x0101010101010101)) >> np.uint64(56)
    total = counts[:, 0]
    for col in range(1, counts.shape[1]):  # (a reduction over axis 1 is several times slower)
        total = total + counts[:, col]
    return total.astype(np.int64)


def stable_order(key: NDArray[np.int64], bound: int | None = None) -> NDArray[np.int64]:
    """Stable argsort of small non-negative integers by 16-bit radix passes (fast in numpy).

    Args:
        key: the integers to sort.
        bound: if known, a bound the keys are below (saves a pass to find their maximum).
    """
    if key.shape[0] == 0 or (bound if bound is not None else int(key.max()) + 1) <= (1 << 16):
        return key.astype(np.uint16).argsort(kind="stable")
    low = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
    high = np.argsort((key[low] >> 16).astype(np.uint32), kind="stable")
    return low[high]


def alert_grades(
    g_up: NDArray[np.int64],
    g_hold: NDArray[np.int64],
    starts: NDArray[np.bool_],
    grade0: NDArray[np.int64],
    runs0: NDArray[np.int64],
    debounce: NDArray[np.int64],
    resolve_after: NDArray[np.int64],
    cap: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The alert state machine over sorted rows of many (series, rule) slots at once.

    Each grade k is a set/reset flip-flop: it is set after `debounce` consecutive readings with
    `g_up >= k` and reset after `resolve_after` consecutive readings with `g_hold < k` (`g_hold`
    uses the thresholds less the hysteresis band, so `g_hold >= g_up`). Set and reset never hold
    at once, and the flip-flops nest (set k implies set k-1), so the alert grade is their sum.
    This equals the per-reading recursion `grade = max(up_d, min(grade_prev, hold_r))` of the
    scalar reference, where up_d is the smallest g_up of the last `debounce` readings and hold_r
    the largest g_hold of the last `resolve_after`.

    Args:
        g_up, g_hold: (n,) raw grades per row, rows sorted by slot then time.
        starts: (n,) first row of each slot's segment.
        grade0: (n,) per row, the slot's carried grade.
        runs0: (n, 8) per row, the slot's carried runs: four of `g_up >= k` (k = 1..4), then
            four of `g_hold < k`.
        debounce, resolve_after, cap: per row, the slot's settings.

    Returns:
        (grade after each row, grade before each row, runs) - the runs (8, n), one row per
        run kind: a segment's last column is the state to carry.
    """
    n = g_up.shape[0]
    idx = np.arange(n, dtype=np.int64)
    first = np.maximum.accumulate(np.where(starts, idx, 0))  # first_index, sharing idx
    # both kinds of run in one pass, one row per grade: g_up >= k, then g_hold < k
    cond = np.empty((8, n), dtype=np.bool_)
    np.greater_equal(g_up, _LEVEL_COL, out=cond[:4])
    np.less(g_hold, _LEVEL_COL, out=cond[4:])
    # run_lengths, sharing idx and first
    last_false = np.maximum.accumulate(np.where(cond, -1, idx), axis=1)
    runs = np.where(last_false >= first, idx - last_false, (idx - first + 1) + runs0.T)
    np.minimum(runs, cap, out=runs)
    set_ = runs[:4] >= debounce
    reset = runs[4:] >= resolve_after
    last_event = np.maximum.accumulate(np.where(set_ | reset, idx, -1), axis=1)
    at_event = set_.reshape(-1).take(np.maximum(last_event, 0) + _ROW_OFFSET * n)
    level_on = np.where(last_event >= first, at_event, grade0 >= _LEVEL_COL)
    grade = np.add.reduce(level_on, axis=0, dtype=np.int64)
    before = np.empty_like(grade)
    if n:
        before[1:] = grade[:-1]
        before[starts] = grade0[starts]
    return grade, before, runs


_TIME_BITS = 42  # a batch spanning up to 2**42 µs (50 days) sorts on one int64 key


def sort_rows(
    sx: NDArray[np.int64], t: NDArray[np.int64], n_series: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_] | None]:
    """Rows sorted by (series, time), stable: the order, the sorted series and times, and
    which sorted rows repeat the (series, time) of the row before them (None: none does).

    Args:
        sx: series index of each row, in [0, n_series).
        t: time of each row, epoch µs.
        n_series: the number of series.
    """
    # Radix-sort on the series (stable: duplicates keep batch order); a device's readings
    # usually arrive in time order, so a full sort is needed only when they did not.
    order = stable_order(sx, n_series)
    s, tt = sx.take(order), t.take(order)
    same = s[1:] == s[:-1]
    if any_true(same & (tt[1:] < tt[:-1])):
        # grouped by series already, so the stable (merge) sort has little to do
        t0 = int(tt.min())
        if int(tt.max()) - t0 < (1 << _TIME_BITS) and n_series < (1 << 20):
            order = order.take(np.argsort((s << _TIME_BITS) | (tt - t0), kind="stable"))
        else:
            order = order.take(np.lexsort((tt, s)))
        s, tt = sx.take(order), t.take(order)
        same = s[1:] == s[:-1]
    again = same & (tt[1:] == tt[:-1])
    if not any_true(again):
        return order, s, tt, None
    repeat = np.zeros(s.shape[0], dtype=np.bool_)
    repeat[1:] = again
    return order, s, tt, repeat
