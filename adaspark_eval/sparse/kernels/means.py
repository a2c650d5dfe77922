"""Unit means of keys or queries, split into 16-bit parts for exact tensor-core dot products.

A float32 mean ``m`` is stored as ``parts`` values of the input dtype (bf16 or fp16) whose sum is ``m``
to about ``8 * parts`` mantissa bits: ``hi = dtype(m)``, ``mid = dtype(m - hi)``, ``lo = ...``. A bf16
query times three parts, accumulated in float32, reproduces the float32 product ``q . m`` of the
reference to float32 rounding, at tensor-core speed.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from adaspark_eval.sparse.kernels.tiles import CubeTiles

PARTS = 3
WARPS = 2  # per (T, D) unit: 2 warps 0.21 -> 0.13 ms for the query means at 64k tokens against the default 4 (H200)


@triton.jit
def _unit_mean_parts_kernel(X, stride_b, stride_h, stride_s, SlotPos, Units, Out, heads, num_units, slots,
                            T: tl.constexpr, D: tl.constexpr, PARTS: tl.constexpr):
    """One program per (sample, head, listed unit): the mean of the unit's rows, written as parts."""
    pid = tl.program_id(0)
    n = pid % num_units
    bh = pid // num_units
    b = bh // heads
    h = bh % heads
    unit = tl.load(Units + b * num_units + n)
    rows = tl.arange(0, T)
    dims = tl.arange(0, D)
    pos = tl.load(SlotPos + b * slots + unit * T + rows)
    valid = pos >= 0
    x = tl.load(X + b * stride_b + h * stride_h + pos.to(tl.int64)[:, None] * stride_s + dims[None, :],
                mask=valid[:, None], other=0.0).to(tl.float32)
    count = tl.maximum(tl.sum(valid.to(tl.float32), 0), 1.0)
    rest = tl.sum(x, 0) / count
    out = Out + (bh.to(tl.int64) * PARTS * num_units + n) * D + dims
    for i in tl.static_range(PARTS):
        part = rest.to(Out.dtype.element_ty)
        tl.store(out + i * num_units * D, part)
        rest = rest - part.to(tl.float32)


def unit_mean_parts(x: Tensor, tiles: CubeTiles, units: Tensor, parts: int = PARTS) -> Tensor:
    """Means of ``x`` over the tokens of the listed units.

    Args:
        x: (B, Hx, S, D) bf16/fp16, last dim contiguous.
        units: (B, N) int32 unit ids (padding entries may name any unit; their rows are ignored later).
    Returns:
        (B, Hx, parts, N, D) in ``x.dtype``; summing over ``parts`` in float32 gives the float32 mean.
    """
    bsz, heads, _, dim = x.shape
    num = units.shape[1]
    out = torch.empty(bsz, heads, parts, num, dim, dtype=x.dtype, device=x.device)
    grid = (bsz * heads * num,)
    _unit_mean_parts_kernel[grid](x, x.stride(0), x.stride(1), x.stride(2), tiles.slot_pos, units, out, heads, num,
                                  tiles.slot_pos.shape[1], T=tiles.tile, D=dim, PARTS=parts,
                                  num_warps=WARPS)
    return out
