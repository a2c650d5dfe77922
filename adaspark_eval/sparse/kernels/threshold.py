"""Top-p and fixed-ratio selection on chip, without sorting: a bisection over probability bit patterns.

For a row of candidate probabilities ``P`` (unnormalised: ``e = exp(s - max s)``, ``Z = sum e``), the
reference keeps the smallest set of largest entries whose mass reaches ``p``. That set is
``{e >= t*}`` where ``t*`` is the largest value with ``mass(e >= t*) >= p * Z``. Non-negative float32
values order like their int32 bit patterns, so ``t*`` is found by bisecting the integer interval
``[bits(0), bits(1) + 1)``, keeping ``mass(e >= lo) >= target > mass(e >= hi)``. The search stops per
row once one value (counted with multiplicity) is left in ``[lo, hi)``: then ``{e >= lo}`` is exactly
the kept set. Fixed ratio is the same search with weight 1 per candidate and target ``ceil(ratio * n)``.

Differences from the reference (``topp.top_p_mask``): masses are summed in another order (float32
rounding decides only when a cumulative sum lies within rounding of ``p``), and entries tied at the
threshold value are all kept, where the reference keeps the lower indices first.

All helpers take one row per selection row: ``(R, C)`` tiles held in registers.
"""

from __future__ import annotations

import triton
import triton.language as tl

ONE_BITS = tl.constexpr(0x3F800000)  # bit pattern of 1.0f


@triton.jit
def softmax_rows(s, cand):
    """Row-wise softmax pieces over candidates.

    Args:
        s: (R, C) float32 scores; cand: (R, C) bool.
    Returns:
        x (R, C): ``exp(s - max)`` at candidates (in [0, 1]) and -1 elsewhere; z (R,) the sum over candidates;
        entropy (R,) in nats of ``x / z`` over candidates (0 for rows without candidates).
    """
    m = tl.max(tl.where(cand, s, -float("inf")), 1)
    m = tl.where(m == -float("inf"), 0.0, m)
    d = s - m[:, None]
    e = tl.where(cand, tl.exp(d), 0.0)
    z = tl.sum(e, 1)
    weighted = tl.sum(e * tl.where(cand, d, 0.0), 1)
    safe = tl.maximum(z, 1e-30)
    entropy = tl.where(z > 0, tl.log(safe) - weighted / safe, 0.0)
    return tl.where(cand, e, -1.0), z, entropy


@triton.jit
def threshold_bits(x, target, COUNT: tl.constexpr):
    """Bit pattern of the largest value ``t`` of each row with ``weight(x >= t) >= target``, the weight of an
    entry being its value (top-p) or 1 (``COUNT``, fixed ratio).

    Args:
        x: (R, C) float32 in [0, 1] for entries that may be kept, -1 elsewhere.
        target: (R,) float32, at most the row's total weight.
    Returns:
        (R,) int32 ``lo``; the kept entries are ``x >= lo`` (as float).
    """
    cnt_lo = tl.sum((x >= 0).to(tl.int32), 1)
    lo = tl.zeros_like(cnt_lo)
    hi = tl.zeros_like(cnt_lo) + (ONE_BITS + 1)
    cnt_hi = tl.zeros_like(cnt_lo)
    searching = tl.max(cnt_lo, 0) > 1  # a carried scalar: a reduction in the loop condition breaks Triton 3.8
    while searching:
        mid = lo + (hi - lo) // 2
        ge = x >= mid.to(tl.float32, bitcast=True)[:, None]
        count = tl.sum(ge.to(tl.int32), 1)
        if COUNT:
            ok = count.to(tl.float32) >= target
        else:
            ok = tl.sum(tl.where(ge, x, 0.0), 1) >= target
        lo = tl.where(ok, mid, lo)
        hi = tl.where(ok, hi, mid)
        cnt_lo = tl.where(ok, count, cnt_lo)
        cnt_hi = tl.where(ok, cnt_hi, count)
        todo = (cnt_lo - cnt_hi > 1) & (hi - lo > 1)
        searching = tl.max(todo.to(tl.int32), 0) > 0
    return lo


@triton.jit
def select_rows(s, cand, p, ratio, KEEP_ALL: tl.constexpr, FIXED: tl.constexpr):
    """The reference selection rule on a tile of score rows.

    Args:
        s: (R, C) float32 scores ``q . kbar * scale``; cand: (R, C) bool candidates.
        p: top-p threshold (used unless ``FIXED``); ratio: kept fraction (used if ``FIXED``).
        KEEP_ALL: ``p >= 1`` without fixed ratio: every candidate is kept.
    Returns:
        allowed (R, C) bool (kept candidates and every non-candidate), candidates (R,), kept candidates (R,)
        and entropy (R,).
    """
    x, z, entropy = softmax_rows(s, cand)
    n_cand = tl.sum((x >= 0).to(tl.int32), 1)
    if KEEP_ALL:
        lo = tl.zeros_like(n_cand)
    elif FIXED:
        lo = threshold_bits(x, tl.maximum(tl.ceil(n_cand.to(tl.float32) * ratio), 1.0), True)
    else:
        lo = threshold_bits(x, z * p, False)
    kept = x >= lo.to(tl.float32, bitcast=True)[:, None]
    return kept | (x < 0), n_cand, tl.sum(kept.to(tl.int32), 1), entropy
