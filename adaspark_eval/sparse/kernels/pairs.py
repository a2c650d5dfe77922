"""Key/query pairs the sparse attention computes, for FLOP accounting (``AttentionStats.pairs``).

One program per (sample, query head, query tile) walks the same units as ``flash``. The list's full
tiles (``T`` keys, every one before every query) add ``T x rows reading them``: all real rows with
``select=cube``, with ``select=token`` the rows whose bits keep them, taken a block of entries at a time;
the other listed tiles and the visible fixed units are counted key by key against the causal mask
(and the rows' bits with ``select=token``). Kept out of the attention kernel, whose registers it would
crowd.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from adaspark_eval.sparse.kernels.select import KernelSelection
from adaspark_eval.sparse.kernels.tiles import CubeTiles

BLOCK = 64  # full list entries counted at a time


@triton.jit
def _visible(KeyPos, qpos, T: tl.constexpr):
    """(T,) int32: keys of the tile at ``KeyPos`` at or before each query position."""
    kpos = tl.load(KeyPos + tl.arange(0, T))
    return tl.sum((kpos[None, :] <= qpos[:, None]).to(tl.int32), 1)


@triton.jit
def _pairs_kernel(SlotPos, KeyPos, Columns, Lists, Counts, FullCounts, Fixed, FixedVisible, Bits, Pairs,
                  heads, num_units, num_fixed, T: tl.constexpr, C: tl.constexpr, ROW_BITS: tl.constexpr,
                  BLOCK: tl.constexpr):
    tile = tl.program_id(0)
    u = tile % num_units
    bh = tile // num_units
    b = bh // heads
    slots = num_units * T
    slot = u * T + tl.arange(0, T)
    qpos = tl.load(SlotPos + b * slots + slot)
    key_pos = KeyPos + b * slots
    row_bits = (bh.to(tl.int64) * slots + slot) * (C // 32)
    full = tl.load(FullCounts + tile)
    if ROW_BITS:
        total = tl.zeros([T], dtype=tl.int32)
        for start in range(0, full, BLOCK):
            entry = start + tl.arange(0, BLOCK)
            col = tl.load(Lists + tile.to(tl.int64) * C + entry, mask=entry < full, other=0)
            words = tl.load(Bits + row_bits[:, None] + col[None, :] // 32)
            kept = (entry[None, :] < full) & (((words >> (col[None, :] % 32)) & 1) != 0) & (qpos[:, None] >= 0)
            total += tl.sum(kept.to(tl.int32), 1) * T
    else:
        total = tl.where(qpos >= 0, full * T, 0)
    for i in range(C - (tl.load(Counts + tile) - full), C):
        col = tl.load(Lists + tile.to(tl.int64) * C + i)
        seen = _visible(key_pos + tl.load(Columns + b * C + col) * T, qpos, T)
        if ROW_BITS:
            seen = tl.where(((tl.load(Bits + row_bits + col // 32) >> (col % 32)) & 1) != 0, seen, 0)
        total += seen
    for i in range(tl.load(FixedVisible + b * num_units + u)):
        total += _visible(key_pos + tl.load(Fixed + b * num_fixed + i) * T, qpos, T)
    tl.store(Pairs + tile, tl.sum(total, 0))


def count_pairs(tiles: CubeTiles, selection: KernelSelection) -> Tensor:
    """(B,) int64 key/query pairs attended over all heads."""
    bsz, heads, units = selection.counts.shape
    pairs = torch.empty(bsz, heads, units, dtype=torch.int32, device=selection.counts.device)
    bits = selection.bits
    _pairs_kernel[(bsz * heads * units,)](
        tiles.slot_pos, tiles.key_pos, tiles.columns, selection.lists, selection.counts,
        selection.full_counts, tiles.fixed, tiles.fixed_visible, selection.counts if bits is None else bits, pairs,
        heads, units, tiles.fixed.shape[1], T=tiles.tile, C=tiles.num_columns, ROW_BITS=bits is not None, BLOCK=BLOCK,
    )
    return pairs.sum(dim=(1, 2), dtype=torch.long)
