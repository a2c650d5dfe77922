"""AdaS-Attn as block-sparse attention in slot order: the block tables and the token-level mask rule that
``fa4`` hands to flash-attn-4's block-sparse forward. Pure torch, so the CPU tests check what the GPU runs.

In slot order (``tiles.CubeTiles``) every unit is ``T`` consecutive slots, so a key block of ``T`` slots is
one unit and a query block of ``QUERY_BLOCK`` slots is ``QUERY_BLOCK // T`` consecutive units (its
*sub-cubes*): one 128-token cube (``T = 128``) or two 64-token cubes (``T = 64``, the default 4x4x4).

For a query block ``m`` and a key unit ``n``:

* *listed* when some sub-cube of ``m`` reads ``n`` (its kept columns, its own unit, the fixed text units; the
  selection kernels' lists) and ``n`` holds a key at or before that sub-cube's last token;
* *full* when listed, every real sub-cube reads ``n``, ``n`` has ``T`` real tokens and all of them come before
  the block's first query: no mask at all;
* a *mask block* otherwise, where ``allowed`` decides each (query slot, key slot) pair: the key's position is
  at or before the query's (the causal edge, padding keys at ``NEVER``), and the query's sub-cube reads ``n``
  (bit ``sub-cube`` of ``code``; with one cube per block every listed block has bit 0 set).

The union of two sub-cubes' sets is computed for both (the other cube's rows masked): ``block_units`` counts
that work, ``kept_units`` the kept (query unit, key unit) pairs, per sample over heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from adaspark_eval.sparse.kernels.tiles import CubeTiles

QUERY_BLOCK = 128  # query slots of one block (flash-attn-4's tile_m on sm90/sm100)
BLOCK_TILES = (64, 128)  # unit tiles (slots per unit = key block) the block tables take


@dataclass(frozen=True)
class BlockTables:
    """flash-attn-4's block-sparse tensors for one layer (``M`` query blocks, ``N`` key blocks = units).

    Attributes:
        full_cnt, mask_cnt: (B, H, M) int32 full / mask blocks of each query block.
        full_idx, mask_idx: (B, H, M, N) int32 their key blocks, ascending from the front (the rest unused).
        code: (B, H, M, N) int32, bit ``j`` set where sub-cube ``j`` of the query block reads key block ``n``.
        cubes: sub-cubes per query block (``QUERY_BLOCK // tile``); tile: slots per unit (the key block).
        query_block: slots per query block (``tile * cubes``).
        kept_units: (B,) long, (query unit, key unit) pairs read, over heads.
        block_units: (B,) long, (query unit, key unit) pairs the blocks compute (listed blocks x ``cubes``).
    """

    full_cnt: Tensor
    full_idx: Tensor
    mask_cnt: Tensor
    mask_idx: Tensor
    code: Tensor
    cubes: int
    tile: int
    kept_units: Tensor
    block_units: Tensor

    @property
    def query_block(self) -> int:
        return self.tile * self.cubes

    @property
    def num_blocks(self) -> int:
        return self.full_cnt.shape[2]


def unit_reads(lists: Tensor, counts: Tensor, full_counts: Tensor, tiles: CubeTiles) -> Tensor:
    """(B, H, U, U) bool: the key units each query unit reads, from the selection kernels' lists.

    Args:
        lists: (B, H, U, C) int32 columns (``full_counts`` at the front, ``counts - full_counts`` at the back).
        counts, full_counts: (B, H, U) int32.
    The fixed units (text with ``text_keys=all``) a unit sees (``tiles.fixed_visible``) are read too.
    """
    bsz, heads, units, cols = lists.shape
    entry = torch.arange(cols, device=lists.device)
    listed = (entry < full_counts[..., None]) | (entry >= cols - (counts - full_counts)[..., None])
    unit_of_col = tiles.columns.long()[:, None, None, :].expand(bsz, heads, units, cols)
    col_units = torch.gather(unit_of_col, 3, torch.where(listed, lists, 0).long())
    reads = torch.zeros(bsz, heads, units, units + 1, dtype=torch.bool, device=lists.device)
    reads.scatter_(3, torch.where(listed, col_units, units), True)
    fixed = tiles.fixed.long()
    seen = torch.arange(fixed.shape[1], device=lists.device) < tiles.fixed_visible.long()[..., None]  # (B, U, F)
    fixed_units = torch.where(seen, fixed[:, None, :], units)[:, None].expand(bsz, heads, units, -1)
    reads.scatter_(3, fixed_units, True)
    return reads[..., :units]


def unit_sizes(tiles: CubeTiles) -> Tensor:
    """(B, U) long, real tokens of each unit."""
    bsz = tiles.slot_pos.shape[0]
    return (tiles.slot_pos.view(bsz, tiles.num_units, tiles.tile) >= 0).sum(-1)


def build_block_tables(reads: Tensor, tiles: CubeTiles, query_block: int = QUERY_BLOCK) -> BlockTables:
    """Block tables of ``reads`` (B, H, U, U) bool (query unit ``u`` reads key unit ``v``; units that only
    start after ``u`` are dropped here) for ``tiles`` of 64 or 128 slots, in query blocks of ``query_block``
    slots (``QUERY_BLOCK``; 64 with 64-slot units gives one cube per block, the benchmark's 64 x 64 row)."""
    if tiles.tile not in BLOCK_TILES or query_block % tiles.tile or query_block // tiles.tile > 2:
        raise ValueError(f"block tables take units of {BLOCK_TILES} slots, one or two per query block, not "
                         f"{tiles.tile}-slot units in {query_block}-slot blocks")
    bsz, heads, units, _ = reads.shape
    cubes = query_block // tiles.tile
    blocks = -(-units // cubes)
    pad = blocks * cubes - units
    first, last = tiles.unit_first.long(), tiles.unit_last.long()
    size = unit_sizes(tiles)
    reads = reads & (first[:, None, :] <= last[:, :, None])[:, None]
    kept_units = reads.sum(dim=(1, 2, 3))
    q_first = torch.nn.functional.pad(first, (0, pad), value=2**62).view(bsz, blocks, cubes)
    q_real = torch.nn.functional.pad(size, (0, pad)).view(bsz, blocks, cubes) > 0
    per_cube = torch.nn.functional.pad(reads, (0, 0, 0, pad)).view(bsz, heads, blocks, cubes, units)
    listed = per_cube.any(dim=3)
    every = (per_cube | ~q_real[:, None, :, :, None]).all(dim=3)
    before = last[:, None, :] < q_first.min(dim=2).values[:, :, None]  # (B, M, N)
    full = listed & every & (before & (size == tiles.tile)[:, None, :])[:, None]
    mask = listed & ~full
    if cubes == 1:  # the only bit is the listed one
        code = listed.to(torch.int32)
    else:
        bit = (1 << torch.arange(cubes, device=reads.device))[None, None, None, :, None]
        code = (per_cube.int() * bit).sum(dim=3, dtype=torch.int32)
    full_cnt, full_idx = _packed(full)
    mask_cnt, mask_idx = _packed(mask)
    return BlockTables(full_cnt=full_cnt, full_idx=full_idx, mask_cnt=mask_cnt, mask_idx=mask_idx, code=code,
                       cubes=cubes, tile=tiles.tile, kept_units=kept_units,
                       block_units=listed.sum(dim=(1, 2, 3)) * cubes)


def _packed(chosen: Tensor) -> tuple[Tensor, Tensor]:
    """Counts (B, H, M) and indices (B, H, M, N), ascending from the front, of the True entries of ``chosen``
    (the rest 0): each entry scattered to its rank, no sort."""
    width = chosen.shape[-1]
    rank = torch.cumsum(chosen, dim=-1, dtype=torch.int32) - 1
    index = torch.zeros(*chosen.shape[:-1], width + 1, dtype=torch.int32, device=chosen.device)
    entries = torch.arange(width, dtype=torch.int32, device=chosen.device).expand_as(chosen)
    index.scatter_(-1, torch.where(chosen, rank, width).long(), entries)
    return chosen.sum(dim=-1, dtype=torch.int32), index[..., :width].contiguous()


def allowed(q_pos: Tensor, k_pos: Tensor, code: Tensor, q_slot: Tensor, tile: int, cubes: int) -> Tensor:
    """The mask rule of a mask block, elementwise (broadcasting): the key position ``k_pos`` is at or before
    the query position ``q_pos`` and bit ``(q_slot // tile) % cubes`` of the block's ``code`` is set.
    ``fa4``'s mask_mods compute the same on the GPU."""
    sub = torch.div(q_slot, tile, rounding_mode="floor") % cubes
    return (k_pos <= q_pos) & (((code >> sub) & 1) == 1)


def slot_padded(tiles: CubeTiles, query_block: int = QUERY_BLOCK) -> tuple[Tensor, Tensor]:
    """Query and key positions (B, M * query_block) int32 of the slots, padded to whole query blocks: -1 /
    ``NEVER`` (``tiles.key_pos``) past the last unit and at padding slots."""
    slots = tiles.slot_pos.shape[1]
    pad = -slots % query_block
    q_pos = torch.nn.functional.pad(tiles.slot_pos, (0, pad), value=-1)
    k_pos = torch.nn.functional.pad(tiles.key_pos, (0, pad), value=int(tiles.key_pos.max()) if slots else 0)
    return q_pos.contiguous(), k_pos.contiguous()


def dense_mask(tables: BlockTables, tiles: CubeTiles) -> Tensor:
    """(B, H, S', S') bool over padded slots: what the block tables and ``allowed`` let each query slot read
    (full blocks whole). The test oracle of the tables; S' = M * QUERY_BLOCK."""
    q_pos, k_pos = slot_padded(tiles, tables.query_block)
    bsz, heads, blocks = tables.full_cnt.shape
    slots = q_pos.shape[1]
    n_blocks = tables.full_idx.shape[3]
    entry = torch.arange(n_blocks, device=q_pos.device)

    def block_grid(cnt: Tensor, idx: Tensor) -> Tensor:
        grid = torch.zeros(bsz, heads, blocks, n_blocks + 1, dtype=torch.bool, device=q_pos.device)
        grid.scatter_(3, torch.where(entry < cnt[..., None], idx.long(), n_blocks), True)
        return grid[..., :n_blocks]

    full, mask = block_grid(tables.full_cnt, tables.full_idx), block_grid(tables.mask_cnt, tables.mask_idx)
    key_block = torch.arange(slots, device=q_pos.device) // tables.tile
    n_keys = min(slots, n_blocks * tables.tile)
    key_block = key_block[:n_keys]
    row_block = torch.arange(slots, device=q_pos.device) // tables.query_block

    def per_slot(x: Tensor) -> Tensor:  # (B, H, M, N) -> (B, H, S', n_keys)
        return x[:, :, row_block][..., key_block]

    q_slot = torch.arange(slots, device=q_pos.device)[:, None]
    rule = allowed(q_pos[:, None, :, None], k_pos[:, None, None, :n_keys], per_slot(tables.code), q_slot,
                   tables.tile, tables.cubes)
    out = torch.zeros(bsz, heads, slots, slots, dtype=torch.bool, device=q_pos.device)
    out[..., :n_keys] = per_slot(full) | (per_slot(mask) & rule)
    return out


def to_slots(x: Tensor, q_pos: Tensor) -> Tensor:
    """``x`` (B, Hx, S, D) in padded slot order (``slot_padded``'s query positions; padding slots repeat
    position 0), as flash-attn-4 takes it: a (B, S', Hx, D) view of a (B, Hx, S', D) copy, made by one
    ``index_select`` of D-element rows per sample."""
    rows = q_pos.clamp_min(0)
    bsz, heads, _, dim = x.shape
    out = x.new_empty(bsz, heads, rows.shape[1], dim)
    for b in range(bsz):
        torch.index_select(x[b], 1, rows[b], out=out[b])
    return out.transpose(1, 2)


def slot_of_positions(q_pos: Tensor, seq: int) -> Tensor:
    """(B, S) long: the slot holding each position, from ``slot_padded``'s query positions (B, S'). Every
    position has one slot in a prefill without padding, the only one ``fa4`` runs (``dispatch.attention``)."""
    bsz, slots = q_pos.shape
    index = torch.zeros(bsz, seq + 1, dtype=torch.long, device=q_pos.device)
    order = torch.arange(slots, device=q_pos.device).expand(bsz, slots)
    index.scatter_(1, torch.where(q_pos >= 0, q_pos, seq).long(), order)
    return index[:, :seq]


def from_slots(out: Tensor, q_pos: Tensor, seq: int) -> Tensor:
    """(B, S, H, D): ``out`` (B, S', H, D) in slot order put back at its positions (padding slots dropped), by
    one ``index_select`` of H x D rows per sample through ``slot_of_positions`` (so every position needs a
    slot: a prefill without padding)."""
    bsz, _, heads, dim = out.shape
    slot = slot_of_positions(q_pos, seq)
    back = out.new_empty(bsz, seq, heads, dim)
    for b in range(bsz):
        torch.index_select(out[b], 0, slot[b], out=back[b])
    return back


def block_attention(query: Tensor, key: Tensor, value: Tensor, tables: BlockTables, tiles: CubeTiles,
                    scaling: float) -> Tensor:
    """What flash-attn-4 computes from the tables, in torch: slot-order attention under ``dense_mask``.

    Args:
        query: (B, H, S, D); key, value: (B, Hkv, S, D).
    Returns:
        (B, S, H, D).
    """
    q_pos, _ = slot_padded(tiles, tables.query_block)
    q, k, v = (to_slots(x, q_pos).transpose(1, 2) for x in (query, key, value))
    mask = dense_mask(tables, tiles)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scaling,
                                                           enable_gqa=k.shape[1] != q.shape[1])
    return from_slots(out.transpose(1, 2), q_pos, query.shape[2])
