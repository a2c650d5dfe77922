"""AdaS-Attn selection kernels: ``q . kbar`` scores, top-p on chip, and the list of units each tile reads.

``select=token``: one program per (sample, query head, query tile); it walks the tile's rows in blocks
of ``RB``, scores each row against every column mean, keeps its top-p set, stores the row's allowed
columns as bits, and ORs the rows into the columns the tile reads. ``select=cube``: one program per ``RB``
query units; a row is a unit's mean query and its allowed columns are the ones its tile reads. Either
stores the read columns as bits, which ``lists.compact_lists`` turns into the tile's list.

Scores are float32-exact: the bf16/fp16 query times the three 16-bit parts of each float32 mean
(``means.unit_mean_parts``) on tensor cores with float32 accumulation (cube mode: three parts of the mean
query too, products below float32 precision skipped).

A row's *allowed* columns are its kept candidates plus every column that is not a candidate (its own
unit; units starting after it, which the causal mask hides anyway). A tile's list holds the allowed
columns of any of its rows that start at or before the tile's last position: first the *full* ones (a
whole tile of keys, all before the tile's first query: no causal mask needed) from the front, the others
from the back.

Columns run in position order, so a program's rows can only choose among a prefix of them: each program
narrows to the first quarter, half or all of the ``C`` columns, whichever holds every column that starts at
or before its last row (``visible_width``). Early tiles score, select and compact fewer columns: at 64k
tokens the cube selection takes 0.90 instead of 1.07 ms, the token selection 28 instead of 40 ms (H200,
``benchmarks/RESULTS.md``). A narrower program steps over the head dim in wider slices and sums a row over
fewer columns, so scores, the softmax normaliser and the entropy may differ from the full width's in the last
float32 bit; a kept set changes only where the choice is decided within that rounding (as between the kernel
and the reference already).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch import Tensor

from adaspark_eval.sparse.kernels.dot import dot
from adaspark_eval.sparse.kernels.lists import compact_lists, pack_bits, store_read_words
from adaspark_eval.sparse.kernels.means import PARTS, unit_mean_parts
from adaspark_eval.sparse.kernels.threshold import select_rows
from adaspark_eval.sparse.kernels.tiles import CubeTiles

ROW_BLOCK_SCORES = 8192  # select=token: rows per block such that a block holds about this many scores
MIN_WIDTH = 32  # fewest columns a selection program narrows to (a bit word)
# software-pipeline stages of the score loop; select=token with 3 would need 316 KiB of shared memory at 1,024
# columns (three inlined widths), and 1 stage was fastest at 64k tokens on an H200 (28.1 against 30.0 ms for 2)
STAGES = {"token": 1, "cube": 3}
# shared memory the score loop's buffered mean tiles may take (a Hopper block has 227 KiB): each stage past the
# first buffers MEAN_PARTS x DK x C 16-bit values, 96 KiB at 1,024 columns (DK = 16), so select=cube runs 3 stages
# up to 1,024 columns, 2 at 2,048 and 1 at 4,096 (tests/sparse/test_selection_resources.py)
SCORE_BUFFER_BYTES = 200 * 1024


@dataclass
class KernelSelection:
    """What the attention kernel reads, and per-row tallies for the statistics.

    Attributes:
        lists: (B, H, U, C) int32 columns tile ``u`` reads: ``full_counts`` full ones at the front,
            ``counts - full_counts`` others at the back.
        counts, full_counts: (B, H, U) int32.
        bits: (B, H, U*T, C/32) int32 allowed columns of each query slot (``select=token``), else None.
        n_cand, n_kept: (B, H, R) int32 candidates and kept candidates of each selection row
            (R = U*T query slots for ``token``, U units for ``cube``).
        entropy: (B, H, R) float32 selection entropy of each row.
    """

    lists: Tensor
    counts: Tensor
    full_counts: Tensor
    bits: Tensor | None
    n_cand: Tensor
    n_kept: Tensor
    entropy: Tensor


@triton.jit
def program_tile(pid, num_tiles, group, kv_heads):
    """(sample, kv head, tile, head in group) of a program: heads sharing a KV head run side by side, the
    tiles with the most keys first."""
    g = pid % group
    rest = pid // group
    tile = num_tiles - 1 - rest % num_tiles
    rest = rest // num_tiles
    return rest // kv_heads, rest % kv_heads, tile, g


@triton.jit
def visible_width(ColFirst, last, C: tl.constexpr):
    """How many leading columns (of ``C`` at ``ColFirst``) a row whose keys end at position ``last`` must look at:
    one past the last column starting at or before ``last`` (columns run in position order, so later ones are
    neither candidates nor read)."""
    cols = tl.arange(0, C)
    return tl.max(tl.where(tl.load(ColFirst + cols) <= last, cols + 1, 0), 0)


@triton.jit
def _scores(Rows, row_off, row_mask, part_stride, Means, scale, RB: tl.constexpr, C: tl.constexpr,
            CW: tl.constexpr, D: tl.constexpr, DK: tl.constexpr, ROW_PARTS: tl.constexpr, MEAN_PARTS: tl.constexpr):
    """(RB, CW) float32 ``row . mean * scale`` over the first ``CW`` columns, from 16-bit parts (rows:
    ``ROW_PARTS`` parts ``part_stride`` apart at ``Rows + row_off``; means: (MEAN_PARTS, C, D) at ``Means``)."""
    cols = tl.arange(0, CW)
    acc = tl.zeros([RB, CW], dtype=tl.float32)
    for d0 in range(0, D, DK):
        dk = d0 + tl.arange(0, DK)
        for j in tl.static_range(MEAN_PARTS):
            mean_t = tl.load(Means + j * C * D + cols[None, :] * D + dk[:, None])
            for i in tl.static_range(ROW_PARTS):
                if i + j < MEAN_PARTS:
                    rows = tl.load(Rows + i * part_stride + row_off[:, None] + dk[None, :], mask=row_mask[:, None],
                                   other=0.0)
                    acc = dot(rows, mean_t, acc)
    return acc * scale


@triton.jit
def _store_rows(NCand, NKept, Entropy, row, row_mask, n_cand, n_kept, entropy):
    tl.store(NCand + row, n_cand, mask=row_mask)
    tl.store(NKept + row, n_kept, mask=row_mask)
    tl.store(Entropy + row, entropy, mask=row_mask)


@triton.jit
def _at_width(body: tl.constexpr, args, width, T: tl.constexpr, RB: tl.constexpr, C: tl.constexpr, D: tl.constexpr,
              DK: tl.constexpr, QUARTER: tl.constexpr, HALF: tl.constexpr, MEAN_PARTS: tl.constexpr,
              KEEP_ALL: tl.constexpr, FIXED: tl.constexpr):
    """Run ``body(*args, T, RB, C, CW, ...)`` (``_token_tile`` or ``_cube_block``) over the narrowest of the first
    ``QUARTER``, ``HALF`` or all ``C`` columns that holds ``width`` of them."""
    if width <= QUARTER:
        body(*args, T, RB, C, QUARTER, D, DK, MEAN_PARTS, KEEP_ALL, FIXED)
    elif width <= HALF:
        body(*args, T, RB, C, HALF, D, DK, MEAN_PARTS, KEEP_ALL, FIXED)
    else:
        body(*args, T, RB, C, C, D, DK, MEAN_PARTS, KEEP_ALL, FIXED)


@triton.jit
def _token_tile(Q, stride_b, stride_h, stride_s, means, SlotPos, ColFirst, Bits, ReadWords, NCand, NKept, Entropy, p,
                ratio, scale, b, h, bh, u, own, chooses, last, num_units,
                T: tl.constexpr, RB: tl.constexpr, C: tl.constexpr, CW: tl.constexpr, D: tl.constexpr,
                DK: tl.constexpr, MEAN_PARTS: tl.constexpr, KEEP_ALL: tl.constexpr, FIXED: tl.constexpr):
    """``select=token`` for one tile over the first ``CW`` columns, in blocks of ``RB * C / CW`` rows (the scores
    of a block stay about ``RB x C``); the rows' bit words past ``CW`` are all ones (not candidates)."""
    RBW: tl.constexpr = min(T, RB * (C // CW))
    WORDS: tl.constexpr = CW // 32
    slots = num_units * T
    cols = tl.arange(0, CW)
    col_first = tl.load(ColFirst + b * C + cols)
    union = tl.zeros([CW], dtype=tl.int32)
    for r0 in range(0, T, RBW):
        slot = u * T + r0 + tl.arange(0, RBW)
        pos = tl.load(SlotPos + b * slots + slot)
        valid = pos >= 0
        row_off = b.to(tl.int64) * stride_b + h * stride_h + pos.to(tl.int64) * stride_s
        s = _scores(Q, row_off, valid, 0, means, scale, RBW, C, CW, D, min(D, DK * (C // CW)), 1, MEAN_PARTS)
        cand = (col_first[None, :] <= pos[:, None]) & (cols[None, :] != own) & (valid & chooses)[:, None]
        allowed, n_cand, n_kept, entropy = select_rows(s, cand, p, ratio, KEEP_ALL, FIXED)
        row = bh.to(tl.int64) * slots + slot
        _store_rows(NCand, NKept, Entropy, row, valid, n_cand, n_kept, entropy)
        words = pack_bits(allowed)
        word_ptr = Bits + row[:, None] * (C // 32) + tl.arange(0, WORDS)[None, :]
        tl.store(word_ptr, words)
        for j in tl.static_range(1, C // CW):
            tl.store(word_ptr + j * WORDS, words * 0 - 1)
        union = tl.maximum(union, tl.max(allowed.to(tl.int32), 0))
    reads = (union != 0) & (col_first <= last)
    tile = bh * num_units + u + tl.arange(0, 1)
    store_read_words(ReadWords, tile, reads[None, :], tile >= 0, C)


@triton.jit
def _select_token_kernel(Q, stride_b, stride_h, stride_s, Means, SlotPos, UnitLast, UnitCol, Chooses, ColFirst, Bits,
                         ReadWords, NCand, NKept, Entropy, p, ratio, scale, heads, kv_heads, num_units,
                         T: tl.constexpr, RB: tl.constexpr, C: tl.constexpr, D: tl.constexpr, DK: tl.constexpr,
                         QUARTER: tl.constexpr, HALF: tl.constexpr, MEAN_PARTS: tl.constexpr,
                         KEEP_ALL: tl.constexpr, FIXED: tl.constexpr):
    group = heads // kv_heads
    b, hk, u, g = program_tile(tl.program_id(0), num_units, group, kv_heads)
    h = hk * group + g
    own = tl.load(UnitCol + b * num_units + u)
    chooses = tl.load(Chooses + b * num_units + u) != 0
    last = tl.load(UnitLast + b * num_units + u)
    means = Means + (b * kv_heads + hk).to(tl.int64) * MEAN_PARTS * C * D
    width = visible_width(ColFirst + b * C, last, C)
    args = (Q, stride_b, stride_h, stride_s, means, SlotPos, ColFirst, Bits, ReadWords, NCand, NKept, Entropy, p,
            ratio, scale, b, h, b * heads + h, u, own, chooses, last, num_units)
    _at_width(_token_tile, args, width, T, RB, C, D, DK, QUARTER, HALF, MEAN_PARTS, KEEP_ALL, FIXED)


@triton.jit
def _cube_block(QMeans, means, UnitCol, Chooses, ColFirst, ReadWords, NCand, NKept, Entropy, p, ratio, scale, b, bh,
                units, inside, last, num_units,
                T: tl.constexpr, RB: tl.constexpr, C: tl.constexpr, CW: tl.constexpr, D: tl.constexpr,
                DK: tl.constexpr, MEAN_PARTS: tl.constexpr, KEEP_ALL: tl.constexpr, FIXED: tl.constexpr):
    """``select=cube`` for the ``RB`` units ``units`` over the first ``CW`` columns."""
    cols = tl.arange(0, CW)
    col_first = tl.load(ColFirst + b * C + cols)
    own = tl.load(UnitCol + b * num_units + units, mask=inside, other=-1)
    chooses = tl.load(Chooses + b * num_units + units, mask=inside, other=0) != 0
    row_off = (bh.to(tl.int64) * MEAN_PARTS * num_units + units) * D
    s = _scores(QMeans, row_off, inside, num_units * D, means, scale, RB, C, CW, D, min(D, DK * (C // CW)),
                MEAN_PARTS, MEAN_PARTS)
    cand = (col_first[None, :] <= last[:, None]) & (cols[None, :] != own[:, None]) & chooses[:, None]
    allowed, n_cand, n_kept, entropy = select_rows(s, cand, p, ratio, KEEP_ALL, FIXED)
    tile = bh * num_units + units
    _store_rows(NCand, NKept, Entropy, tile, inside, n_cand, n_kept, entropy)
    store_read_words(ReadWords, tile, allowed & (col_first[None, :] <= last[:, None]), inside, C)


@triton.jit
def _select_cube_kernel(QMeans, Means, UnitLast, UnitCol, Chooses, ColFirst, ReadWords, NCand, NKept, Entropy, p,
                        ratio, scale, heads, kv_heads, num_units,
                        T: tl.constexpr, RB: tl.constexpr, C: tl.constexpr, D: tl.constexpr, DK: tl.constexpr,
                        QUARTER: tl.constexpr, HALF: tl.constexpr, MEAN_PARTS: tl.constexpr,
                        KEEP_ALL: tl.constexpr, FIXED: tl.constexpr):
    group = heads // kv_heads
    b, hk, block, g = program_tile(tl.program_id(0), tl.cdiv(num_units, RB), group, kv_heads)
    h = hk * group + g
    units = block * RB + tl.arange(0, RB)
    inside = units < num_units
    last = tl.load(UnitLast + b * num_units + units, mask=inside, other=-1)
    means = Means + (b * kv_heads + hk).to(tl.int64) * MEAN_PARTS * C * D
    width = visible_width(ColFirst + b * C, tl.max(last, 0), C)
    args = (QMeans, means, UnitCol, Chooses, ColFirst, ReadWords, NCand, NKept, Entropy, p, ratio, scale, b,
            b * heads + h, units, inside, last, num_units)
    _at_width(_cube_block, args, width, T, RB, C, D, DK, QUARTER, HALF, MEAN_PARTS, KEEP_ALL, FIXED)


def launch_constants(select: str, cols: int, tile: int, dim: int) -> dict[str, int]:
    """Compile-time constants and launch options of the ``select`` (``token`` or ``cube``) kernel for ``cols``
    columns, ``tile`` slots per unit and head dim ``dim`` (the rule's ``KEEP_ALL`` / ``FIXED`` aside)."""
    rows = max(16, min(tile, ROW_BLOCK_SCORES // cols)) if select == "token" else 16
    step = max(16, min(dim, 16384 // cols))
    buffered = 1 + SCORE_BUFFER_BYTES // (PARTS * step * cols * 2)
    return {"T": tile, "RB": rows, "C": cols, "D": dim, "DK": step, "QUARTER": _narrowed(cols, 4),
            "HALF": _narrowed(cols, 2), "MEAN_PARTS": PARTS, "num_warps": 8 if rows * cols >= 4096 else 4,
            "num_stages": min(STAGES[select], buffered)}


def _narrowed(cols: int, factor: int) -> int:
    """The column width a program narrows to when its rows see at most ``cols / factor`` columns (``cols`` when
    that is under ``MIN_WIDTH``)."""
    return cols // factor if cols // factor >= MIN_WIDTH else cols


def select_tiles(query: Tensor, key: Tensor, tiles: CubeTiles, chooses: Tensor, select: str, p: float,
                 fixed_ratio: float | None, scaling: float) -> KernelSelection:
    """Run the selection of ``select`` (``token`` or ``cube``).

    Args:
        query: (B, H, S, D), key: (B, Hkv, S, D), bf16/fp16, post-RoPE, last dim contiguous.
        chooses: (B, U) int32, 1 where the unit's queries select (the others read every column).
        p, fixed_ratio: the selection rule (``fixed_ratio`` wins when set).
    """
    bsz, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    units, cols, tile = tiles.num_units, tiles.num_columns, tiles.tile
    device = query.device
    means = unit_mean_parts(key, tiles, tiles.columns)
    rows = units * tile if select == "token" else units
    read_words = torch.empty(bsz, heads, units, cols // 32, dtype=torch.int32, device=device)
    n_cand = torch.zeros(bsz, heads, rows, dtype=torch.int32, device=device)
    n_kept = torch.zeros_like(n_cand)
    entropy = torch.zeros(bsz, heads, rows, dtype=torch.float32, device=device)
    launch = launch_constants(select, cols, tile, dim)
    rule = {"p": p, "ratio": fixed_ratio or 1.0, "scale": scaling, "heads": heads, "kv_heads": kv_heads,
            "num_units": units, "KEEP_ALL": fixed_ratio is None and p >= 1.0, "FIXED": fixed_ratio is not None,
            **launch}
    if select == "token":
        bits = torch.empty(bsz, heads, rows, cols // 32, dtype=torch.int32, device=device)
        grid = (bsz * heads * units,)
        _select_token_kernel[grid](query, query.stride(0), query.stride(1), query.stride(2), means, tiles.slot_pos,
                                   tiles.unit_last, tiles.unit_col, chooses, tiles.col_first, bits, read_words,
                                   n_cand, n_kept, entropy, **rule)
    else:
        bits = None
        query_means = unit_mean_parts(query, tiles, torch.arange(units, dtype=torch.int32, device=device)
                                      .expand(bsz, units).contiguous())
        grid = (bsz * heads * triton.cdiv(units, launch["RB"]),)
        _select_cube_kernel[grid](query_means, means, tiles.unit_last, tiles.unit_col, chooses, tiles.col_first,
                                  read_words, n_cand, n_kept, entropy, **rule)
    lists, counts, full_counts = compact_lists(read_words, tiles)
    return KernelSelection(lists=lists, counts=counts, full_counts=full_counts, bits=bits, n_cand=n_cand,
                           n_kept=n_kept, entropy=entropy)
