"""Each tile's read list, compacted from one bit per column: the *full* columns from the front, the others from
the back (``select.KernelSelection.lists``).

The selection kernels store the columns a tile reads as bit words; one program per tile turns them into the
list in steps of ``CHUNK`` columns, carrying the counts from step to step. Compacting inside the selection
kernels instead (a prefix sum over all ``C`` columns of every row a program selects for) needed 128 KiB of
shared memory at 1,024 columns and 256 KiB at 2,048, past the 227 KiB a Hopper block has (sm_90, Triton 3.6).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from adaspark_eval.sparse.kernels.tiles import CubeTiles

CHUNK = 1024  # columns a compaction step takes (0.084 ms at 64k tokens on an H200, 0.095 with 512)


@triton.jit
def pack_bits(flags):
    """(R, W/32) int32 words of ``flags`` (R, W) bool: column ``c`` is bit ``c % 32`` of word ``c // 32``."""
    rows: tl.constexpr = flags.shape[0]
    width: tl.constexpr = flags.shape[1]
    bits = tl.reshape(flags.to(tl.int32), (rows, width // 32, 32)) << tl.arange(0, 32)[None, None, :]
    return tl.sum(bits, 2)  # disjoint bits: the sum is their OR


@triton.jit
def store_read_words(ReadWords, tile, reads, tile_mask, C: tl.constexpr):
    """Store ``reads`` (R, CW) bool, the first ``CW`` of ``C`` columns of the tiles ``tile`` (R,), as bit words
    of ``ReadWords`` (tiles, C/32); the words past ``CW`` are zero (not read)."""
    words_wide: tl.constexpr = reads.shape[1] // 32
    word_ptr = ReadWords + tile[:, None].to(tl.int64) * (C // 32) + tl.arange(0, words_wide)[None, :]
    words = pack_bits(reads)
    tl.store(word_ptr, words, mask=tile_mask[:, None])
    for j in tl.static_range(1, C // reads.shape[1]):
        tl.store(word_ptr + j * words_wide, words * 0, mask=tile_mask[:, None])


@triton.jit
def _compact_kernel(ReadWords, UnitFirst, ColLast, ColSize, Lists, Counts, FullCounts, heads, num_units,
                    T: tl.constexpr, C: tl.constexpr, CHUNK: tl.constexpr):
    """One program per tile (sample, head, unit): its read bits to ``Lists[tile]``, ``Counts``, ``FullCounts``."""
    tile = tl.program_id(0)
    b = tile // (heads * num_units)
    first = tl.load(UnitFirst + b * num_units + tile % num_units)
    row = tile.to(tl.int64) * C
    n_full = 0
    n_rest = 0
    for c0 in range(0, C, CHUNK):
        cols = c0 + tl.arange(0, CHUNK)
        words = tl.load(ReadWords + tile.to(tl.int64) * (C // 32) + cols // 32)
        reads = ((words >> (cols % 32)) & 1) != 0
        full = (tl.load(ColLast + b * C + cols) <= first) & (tl.load(ColSize + b * C + cols) == T)
        front = (reads & full).to(tl.int32)
        back = (reads & ~full).to(tl.int32)
        index = tl.where(full, n_full + tl.cumsum(front, 0) - 1, C - n_rest - tl.cumsum(back, 0))
        tl.store(Lists + row + index, cols, mask=reads)
        n_full += tl.sum(front, 0)
        n_rest += tl.sum(back, 0)
    tl.store(Counts + tile, n_full + n_rest)
    tl.store(FullCounts + tile, n_full)


def compact_lists(read_words: Tensor, tiles: CubeTiles, chunk: int = CHUNK) -> tuple[Tensor, Tensor, Tensor]:
    """Lists, counts and full counts of every tile.

    Args:
        read_words: (B, H, U, C/32) int32, the columns each tile reads as bits.
        chunk: columns a compaction step takes (a power of two >= 32).
    Returns:
        lists (B, H, U, C) int32 (``full_counts`` full columns in position order at the front, the other
        ``counts - full_counts`` in the last entries in reverse position order; the middle unwritten), counts and
        full_counts (B, H, U) int32.
    """
    bsz, heads, units, _ = read_words.shape
    cols = tiles.num_columns
    lists = torch.empty(bsz, heads, units, cols, dtype=torch.int32, device=read_words.device)
    counts = torch.empty(bsz, heads, units, dtype=torch.int32, device=read_words.device)
    full_counts = torch.empty_like(counts)
    _compact_kernel[(bsz * heads * units,)](read_words, tiles.unit_first, tiles.col_last, tiles.col_size, lists,
                                            counts, full_counts, heads, units, T=tiles.tile, C=cols,
                                            CHUNK=min(chunk, cols))
    return lists, counts, full_counts
