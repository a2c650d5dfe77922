"""Key/query pairs the sparse attention computes, for FLOP accounting (``AttentionStats.pairs``).

A tile's pairs come from its list's full tiles (``T`` keys, every one before every query), its other listed
tiles and the fixed units it reads (both under the causal mask), as ``flash`` walks them.

``select=cube``: every row of a tile reads the same units, so a full tile adds ``T x real rows`` and the
causal tiles' counts depend only on (unit, column): ``cube_pair_tables`` counts them once per forward
(``PairTables``, shared by all layers and heads through ``ForwardState.pair_tables``), and each layer sums its
listed entries in a few vector loads.
``select=token``: the rows' bits decide, so one program per (sample, query head, query tile) counts row by
row, full entries a block at a time and the other tiles key by key. Kept out of the attention kernel: counting
there slowed it more than this costs (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl
from torch import Tensor

from adaspark_eval.sparse.kernels.select import KernelSelection
from adaspark_eval.sparse.kernels.tiles import CubeTiles, next_power_of_two

if TYPE_CHECKING:
    from adaspark_eval.sparse.state import ForwardState

BLOCK = 64  # select=token: full list entries counted at a time
CHUNK = 4096  # (unit, unit) pairs whose T x T position comparisons are held at once


@dataclass(frozen=True)
class PairTables:
    """Causal-mask pair counts of one forward's tiles (``select=cube``), all int32.

    Attributes:
        partial: (B, U, C) pairs of unit ``u``'s queries with column ``c``'s keys for the columns a tile may
            list that are not full (0 for the others).
        fixed: (B, U) pairs with the fixed units unit ``u`` reads.
        width: most partial columns of any unit (a power of two >= 16).
    """

    partial: Tensor
    fixed: Tensor
    width: int


def _visible_pairs(query_pos: Tensor, key_pos: Tensor) -> Tensor:
    """(N,) int32 pairs with ``key <= query`` of N (query tile, key tile) couples, positions (N, T) each
    (padding queries -1, padding keys after every query), compared ``CHUNK`` couples at a time."""
    return torch.cat([(k[:, None, :] <= q[:, :, None]).sum(dim=(1, 2), dtype=torch.int32)
                      for q, k in zip(query_pos.split(CHUNK), key_pos.split(CHUNK))])


def cube_pair_tables(tiles: CubeTiles) -> PairTables:
    """``PairTables`` of ``tiles``: the position comparisons of every causal (unit, unit) couple, once."""
    bsz, units, cols, tile = tiles.unit_first.shape[0], tiles.num_units, tiles.num_columns, tiles.tile
    query_pos, key_pos = tiles.slot_pos.view(bsz, units, tile), tiles.key_pos.view(bsz, units, tile)
    full = (tiles.col_last[:, None, :] <= tiles.unit_first[:, :, None]) & (tiles.col_size[:, None, :] == tile)
    partial_mask = (tiles.col_first[:, None, :] <= tiles.unit_last[:, :, None]) & ~full  # (B, U, C)
    b, u, c = partial_mask.nonzero(as_tuple=True)
    partial = torch.zeros(bsz, units, cols, dtype=torch.int32, device=tiles.slot_pos.device)
    partial[b, u, c] = _visible_pairs(query_pos[b, u], key_pos[b, tiles.columns[b, c].long()])
    fixed = torch.zeros(bsz, units, dtype=torch.int32, device=partial.device)
    slots = torch.arange(tiles.fixed.shape[1], device=partial.device)
    b, u, i = (slots[None, None, :] < tiles.fixed_visible[:, :, None]).nonzero(as_tuple=True)
    fixed.index_put_((b, u), _visible_pairs(query_pos[b, u], key_pos[b, tiles.fixed[b, i].long()]), accumulate=True)
    width = next_power_of_two(int(partial_mask.sum(dim=2).max()) if units else 1, 16)
    return PairTables(partial=partial, fixed=fixed, width=width)


@triton.jit
def _cube_pairs_kernel(SlotPos, Lists, Counts, FullCounts, Partial, Fixed, Pairs, heads, num_units,
                       T: tl.constexpr, C: tl.constexpr, P: tl.constexpr):
    tile = tl.program_id(0)
    u = tile % num_units
    b = tile // num_units // heads
    unit = b * num_units + u
    rows = tl.sum((tl.load(SlotPos + unit * T + tl.arange(0, T)) >= 0).to(tl.int32), 0)
    full = tl.load(FullCounts + tile)
    listed = tl.load(Counts + tile) - full  # the other listed columns, at the back of the list
    pairs = full * T * rows + tl.load(Fixed + unit)
    for start in range(0, listed, P):
        entry = start + tl.arange(0, P)
        col = tl.load(Lists + tile.to(tl.int64) * C + C - 1 - entry, mask=entry < listed, other=0)
        pairs += tl.sum(tl.load(Partial + unit.to(tl.int64) * C + col, mask=entry < listed, other=0), 0)
    tl.store(Pairs + tile, pairs)


@triton.jit
def _visible(KeyPos, qpos, T: tl.constexpr):
    """(T,) int32: keys of the tile at ``KeyPos`` at or before each query position."""
    kpos = tl.load(KeyPos + tl.arange(0, T))
    return tl.sum((kpos[None, :] <= qpos[:, None]).to(tl.int32), 1)


@triton.jit
def _token_pairs_kernel(SlotPos, KeyPos, Columns, Lists, Counts, FullCounts, Fixed, FixedVisible, Bits, Pairs,
                        heads, num_units, num_fixed, T: tl.constexpr, C: tl.constexpr, BLOCK: tl.constexpr):
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
    total = tl.zeros([T], dtype=tl.int32)
    for start in range(0, full, BLOCK):
        entry = start + tl.arange(0, BLOCK)
        col = tl.load(Lists + tile.to(tl.int64) * C + entry, mask=entry < full, other=0)
        words = tl.load(Bits + row_bits[:, None] + col[None, :] // 32)
        kept = (entry[None, :] < full) & (((words >> (col[None, :] % 32)) & 1) != 0) & (qpos[:, None] >= 0)
        total += tl.sum(kept.to(tl.int32), 1) * T
    for i in range(C - (tl.load(Counts + tile) - full), C):
        col = tl.load(Lists + tile.to(tl.int64) * C + i)
        seen = _visible(key_pos + tl.load(Columns + b * C + col) * T, qpos, T)
        total += tl.where(((tl.load(Bits + row_bits + col // 32) >> (col % 32)) & 1) != 0, seen, 0)
    for i in range(tl.load(FixedVisible + b * num_units + u)):
        total += _visible(key_pos + tl.load(Fixed + b * num_fixed + i) * T, qpos, T)
    tl.store(Pairs + tile, tl.sum(total, 0))


def count_pairs(tiles: CubeTiles, selection: KernelSelection, state: ForwardState | None = None) -> Tensor:
    """(B,) int64 key/query pairs attended over all heads. ``state``: the forward in flight, which builds the
    ``select=cube`` tables of ``tiles`` once for all its layers (None: built here)."""
    bsz, heads, units = selection.counts.shape
    pairs = torch.empty(bsz, heads, units, dtype=torch.int32, device=selection.counts.device)
    grid = (bsz * heads * units,)
    if selection.bits is None:
        tables = cube_pair_tables(tiles) if state is None else state.pair_tables(tiles)
        _cube_pairs_kernel[grid](tiles.slot_pos, selection.lists, selection.counts, selection.full_counts,
                                 tables.partial, tables.fixed, pairs, heads, units, T=tiles.tile,
                                 C=tiles.num_columns, P=tables.width)
    else:
        _token_pairs_kernel[grid](tiles.slot_pos, tiles.key_pos, tiles.columns, selection.lists, selection.counts,
                                  selection.full_counts, tiles.fixed, tiles.fixed_visible, selection.bits, pairs,
                                  heads, units, tiles.fixed.shape[1], T=tiles.tile, C=tiles.num_columns, BLOCK=BLOCK)
    return pairs.sum(dim=(1, 2), dtype=torch.long)
