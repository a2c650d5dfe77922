"""Block-sparse prefill attention (``sparse.blocks``) on the AdaS-Attn flash kernel (``flash.sparse_flash``).

The kernel attends each query tile to the columns in its list. Here the units are the blocks of ``block``
consecutive positions (``block_tiles``: each block one tile of ``T = next power of two >= block`` slots, every
block a column, no fixed units), and a query block's list holds the key blocks it keeps (``block_lists``):
the blocks wholly before it (of ``T`` tokens) at the front, read without a mask, the others (its own block,
and shorter blocks) at the back, read with the token-level causal mask. Equal to ``attend_blocks``'s reference
path up to the kernel's bf16/fp16 arithmetic (``tests/sparse/test_kernels_block_sparse.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from adaspark_eval.sparse.blocks import num_blocks
from adaspark_eval.sparse.kernels.flash import sparse_flash
from adaspark_eval.sparse.kernels.tiles import NEVER, CubeTiles, next_power_of_two


class BlockLists(NamedTuple):
    """The part of ``select.KernelSelection`` the attention kernel reads (no per-row bits)."""

    lists: Tensor
    counts: Tensor
    full_counts: Tensor
    bits: None = None


def block_tiles(bsz: int, seq: int, block: int, device: torch.device) -> CubeTiles:
    """Tiles of ``seq`` positions in blocks of ``block`` (the last one shorter), every block a column."""
    blocks = num_blocks(seq, block)
    tile = next_power_of_two(block, 16)
    columns = next_power_of_two(blocks, 32)
    index = torch.arange(blocks, device=device)
    rank = torch.arange(tile, device=device)
    pos = index[:, None] * block + rank[None, :]
    slot_pos = torch.where((rank[None, :] < block) & (pos < seq), pos, -1).reshape(1, -1).to(torch.int32)
    first = (index * block).to(torch.int32)
    last = ((index * block + block).clamp_max(seq) - 1).to(torch.int32)
    size = last - first + 1

    def per_column(values: Tensor, fill: int) -> Tensor:
        return torch.cat([values, values.new_full((columns - blocks,), fill)]).to(torch.int32)

    def batch(x: Tensor) -> Tensor:
        return x.reshape(1, -1).expand(bsz, -1).contiguous()

    return CubeTiles(
        tile=tile, slot_pos=batch(slot_pos), key_pos=batch(torch.where(slot_pos < 0, NEVER, slot_pos)),
        unit_first=batch(first), unit_last=batch(last), unit_col=batch(index.to(torch.int32)),
        columns=batch(per_column(index.to(torch.int32), 0)), col_first=batch(per_column(first, NEVER)),
        col_last=batch(per_column(last, -1)), col_size=batch(per_column(size, 0)),
        fixed=torch.zeros(bsz, 1, dtype=torch.int32, device=device),
        fixed_visible=torch.zeros(bsz, blocks, dtype=torch.int32, device=device))


def block_lists(keep: Tensor, tiles: CubeTiles) -> BlockLists:
    """Each query tile's list from the block mask.

    Args:
        keep: (B, H, Qb, Kb) bool kept blocks (within the causal blocks).
    Returns:
        lists (B, H, Qb, C) int32 (the full blocks, ascending, at the front; the others at the back), counts and
        full_counts (B, H, Qb) int32.
    """
    bsz, heads, blocks, _ = keep.shape
    columns = tiles.num_columns
    kept = torch.nn.functional.pad(keep, (0, columns - blocks))
    before = tiles.col_last[:, None, None, :] < tiles.unit_first[:, None, :, None]
    full = kept & before & (tiles.col_size == tiles.tile)[:, None, None, :]
    other = kept & ~full
    n_full, n_other = full.sum(dim=-1), other.sum(dim=-1)
    slot = torch.arange(columns, device=keep.device)
    fronts = torch.argsort((~full).to(torch.int8), dim=-1, stable=True)
    backs = torch.argsort((~other).to(torch.int8), dim=-1, stable=True).flip(-1)  # kept others last, descending
    lists = torch.where(slot < n_full[..., None], fronts, 0)
    lists = torch.where(slot >= columns - n_other[..., None], backs, lists)
    return BlockLists(lists.to(torch.int32).contiguous(), (n_full + n_other).to(torch.int32).contiguous(),
                      n_full.to(torch.int32).contiguous())


def kernel_blocks(query: Tensor, key: Tensor, value: Tensor, keep: Tensor, block: int, scaling: float) -> Tensor:
    """Block-sparse attention of a prefill without padding on the flash kernel.

    Args:
        query: (B, H, S, D); key, value: (B, Hkv, S, D); bf16/fp16, post-RoPE; keep: (B, H, Qb, Kb) bool.
    Returns:
        (B, S, H, D) in the query dtype.
    """
    query, key, value = (x if x.stride(-1) == 1 else x.contiguous() for x in (query, key, value))
    tiles = block_tiles(query.shape[0], query.shape[2], block, query.device)
    return sparse_flash(query, key, value, tiles, block_lists(keep, tiles), scaling)
