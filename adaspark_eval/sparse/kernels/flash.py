"""Flash-attention forward over the listed units only.

One program per (sample, query head, query tile): the tile's ``T`` query slots attend, with an online
softmax, to the key tiles of (1) the columns in the tile's list and (2) the fixed units that start at or
before the tile's last position. Key tiles get the original token-level causal mask
(``key position <= query position``) on the slots' positions, except the *full* tiles at the front of the
list, which lie wholly before every query of the tile; with ``select=token`` each row also drops the columns its
own top-p set left out (one bit per row and column).

Keys and values are read from copies in slot order (``T`` rows per unit), so a key tile is one
contiguous block; queries are gathered from, and outputs scattered to, their original positions.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import triton
import triton.language as tl
from torch import Tensor

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # Triton before 3.3: pointer loads only
    TensorDescriptor = None

from adaspark_eval.sparse.kernels.dot import dot
from adaspark_eval.sparse.kernels.select import KernelSelection, program_tile
from adaspark_eval.sparse.kernels.tiles import CubeTiles

MASKED = tl.constexpr(-1.0e30)  # finite: a row whose first key tile is all masked stays NaN-free and is erased later


class FlashLaunch(NamedTuple):
    """How the attention kernel runs: key/value tiles read by the tensor memory accelerator (``tma``, Hopper
    and later: asynchronous bulk copies the compiler pipelines) or by per-thread loads; warps per program;
    software-pipeline stages."""

    tma: bool = False
    num_warps: int = 4
    num_stages: int = 2


def default_launch(device: torch.device) -> FlashLaunch:
    """Tensor-descriptor loads and 3 stages on Hopper and later (12% faster than pointer loads at 64k tokens on
    an H200, ``benchmarks/RESULTS.md``); pointer loads elsewhere (older GPUs, the CPU interpreter)."""
    hopper = device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9
    return FlashLaunch(tma=True, num_stages=3) if hopper and TensorDescriptor is not None else FlashLaunch()


@triton.jit
def load_tile(X, row, T: tl.constexpr, D: tl.constexpr, TMA: tl.constexpr):
    """Rows ``row : row + T`` of the (slots, D) slot-ordered keys or values ``X`` (a tensor descriptor if
    ``TMA``, else a pointer)."""
    if TMA:
        tile = X.load([row, 0])
    else:
        tile = tl.load(X + (row + tl.arange(0, T)).to(tl.int64)[:, None] * D + tl.arange(0, D)[None, :])
    return tile


@triton.jit
def online_update(q, k, v, m_i, l_i, acc, qk_scale, mask, MASK: tl.constexpr):
    """Online-softmax update of the (T, D) running output ``acc`` (row maxima ``m_i``, sums ``l_i``, base 2) by
    one key tile ``k`` / ``v`` (T, D); keys where ``mask`` (T, T) is False are left out if ``MASK``."""
    qk = dot(q, tl.trans(k), tl.zeros([q.shape[0], k.shape[0]], dtype=tl.float32)) * qk_scale
    if MASK:
        qk = tl.where(mask, qk, MASKED)
    m_new = tl.maximum(m_i, tl.max(qk, 1))
    alpha = tl.exp2(m_i - m_new)
    prob = tl.exp2(qk - m_new[:, None])
    acc = dot(prob.to(v.dtype), v, acc * alpha[:, None])
    l_i = l_i * alpha + tl.sum(prob, 1)
    return m_new, l_i, acc


@triton.jit
def _attend(q, K, V, row, KeyPos, qpos, row_keep, m_i, l_i, acc, qk_scale, T: tl.constexpr, D: tl.constexpr,
            CAUSAL: tl.constexpr, ROW_BITS: tl.constexpr, TMA: tl.constexpr):
    """One key tile: slots ``row : row + T`` of ``K`` / ``V`` (key positions at ``KeyPos``), with the causal mask
    if ``CAUSAL`` and the rows' bits ``row_keep`` (T,) if ``ROW_BITS``."""
    k = load_tile(K, row, T, D, TMA)
    mask = row_keep[:, None]
    if CAUSAL:
        mask = tl.load(KeyPos + tl.arange(0, T))[None, :] <= qpos[:, None]
        if ROW_BITS:
            mask = mask & row_keep[:, None]
    v = load_tile(V, row, T, D, TMA)
    return online_update(q, k, v, m_i, l_i, acc, qk_scale, mask, CAUSAL or ROW_BITS)


@triton.jit
def _attend_listed(q, KS, VS, head_row, key_pos, Lists, Columns, Bits, row_bits, b, tile, start, end, qpos, m_i, l_i,
                   acc, qk_scale, T: tl.constexpr, C: tl.constexpr, D: tl.constexpr, CAUSAL: tl.constexpr,
                   ROW_BITS: tl.constexpr, TMA: tl.constexpr):
    """Entries ``start:end`` of the tile's list (``KS`` / ``VS``: slot-ordered keys / values, this KV head's
    from row ``head_row``; ``row_bits``: offsets of the rows' bit words)."""
    row_keep = qpos >= -1
    for i in range(start, end):
        col = tl.load(Lists + tile.to(tl.int64) * C + i)
        unit = tl.load(Columns + b * C + col)
        if ROW_BITS:
            row_keep = ((tl.load(Bits + row_bits + col // 32) >> (col % 32)) & 1) != 0
        m_i, l_i, acc = _attend(q, KS, VS, head_row + unit * T, key_pos + unit * T, qpos, row_keep, m_i, l_i, acc,
                                qk_scale, T, D, CAUSAL, ROW_BITS, TMA)
    return m_i, l_i, acc


@triton.jit
def _sparse_flash_kernel(Q, sq_b, sq_h, sq_s, KS, VS, Out, so_b, so_s, so_h, SlotPos, KeyPos, Columns, Lists, Counts,
                         FullCounts, Fixed, FixedVisible, Bits, qk_scale, heads, kv_heads, num_units, num_fixed,
                         T: tl.constexpr, C: tl.constexpr, D: tl.constexpr, ROW_BITS: tl.constexpr,
                         TMA: tl.constexpr):
    group = heads // kv_heads
    b, hk, u, g = program_tile(tl.program_id(0), num_units, group, kv_heads)
    h = hk * group + g
    bh = b * heads + h
    slots = num_units * T
    rows = tl.arange(0, T)
    dims = tl.arange(0, D)
    slot = u * T + rows
    qpos = tl.load(SlotPos + b * slots + slot)
    valid = qpos >= 0
    q = tl.load(Q + b.to(tl.int64) * sq_b + h * sq_h + qpos.to(tl.int64)[:, None] * sq_s + dims[None, :],
                mask=valid[:, None], other=0.0)
    m_i = tl.zeros([T], dtype=tl.float32) + MASKED
    l_i = tl.zeros([T], dtype=tl.float32)
    acc = tl.zeros([T, D], dtype=tl.float32)
    head_row = (b * kv_heads + hk) * slots
    key_pos = KeyPos + b * slots
    tile = bh * num_units + u
    row_bits = (bh.to(tl.int64) * slots + slot) * (C // 32)
    full = tl.load(FullCounts + tile)
    m_i, l_i, acc = _attend_listed(q, KS, VS, head_row, key_pos, Lists, Columns, Bits, row_bits, b, tile, 0, full,
                                   qpos, m_i, l_i, acc, qk_scale, T, C, D, False, ROW_BITS, TMA)
    m_i, l_i, acc = _attend_listed(q, KS, VS, head_row, key_pos, Lists, Columns, Bits, row_bits, b, tile,
                                   C - (tl.load(Counts + tile) - full), C, qpos, m_i, l_i, acc, qk_scale, T, C, D,
                                   True, ROW_BITS, TMA)
    for i in range(tl.load(FixedVisible + b * num_units + u)):
        unit = tl.load(Fixed + b * num_fixed + i)
        m_i, l_i, acc = _attend(q, KS, VS, head_row + unit * T, key_pos + unit * T, qpos, valid, m_i, l_i, acc,
                                qk_scale, T, D, True, False, TMA)
    out = (acc / tl.maximum(l_i, 1e-30)[:, None]).to(Out.dtype.element_ty)
    # positions reloaded and row pointers formed here: built from the first load, the (T, D) pointers stayed live
    # through the loops and spilled
    out_pos = tl.load(SlotPos + b * slots + slot)
    out_rows = Out + b.to(tl.int64) * so_b + h * so_h + tl.maximum(out_pos, 0).to(tl.int64) * so_s
    tl.store(out_rows[:, None] + dims[None, :], out, mask=(out_pos >= 0)[:, None])


@triton.jit
def _slot_order_kernel(X, sx_b, sx_h, sx_s, SlotPos, Out, heads, num_units, T: tl.constexpr, D: tl.constexpr):
    """One program per (sample, head, unit): the unit's ``T`` rows copied to their slots (padding: position 0)."""
    pid = tl.program_id(0)
    bh = pid // num_units
    b = bh // heads
    slots = num_units * T
    slot = (pid % num_units) * T + tl.arange(0, T)
    dims = tl.arange(0, D)
    pos = tl.maximum(tl.load(SlotPos + b * slots + slot), 0).to(tl.int64)
    rows = tl.load(X + b.to(tl.int64) * sx_b + (bh % heads) * sx_h + pos[:, None] * sx_s + dims[None, :])
    tl.store(Out + (bh.to(tl.int64) * slots + slot)[:, None] * D + dims[None, :], rows)


def slot_order(x: Tensor, tiles: CubeTiles) -> Tensor:
    """(B, Hx, U*T, D) contiguous copy of ``x`` (B, Hx, S, D; last dim contiguous) in slot order (padding slots
    repeat position 0)."""
    bsz, heads, _, dim = x.shape
    out = torch.empty(bsz, heads, tiles.slot_pos.shape[1], dim, dtype=x.dtype, device=x.device)
    _slot_order_kernel[(bsz * heads * tiles.num_units,)](x, x.stride(0), x.stride(1), x.stride(2), tiles.slot_pos,
                                                          out, heads, tiles.num_units, T=tiles.tile, D=dim)
    return out


def sparse_flash(query: Tensor, key: Tensor, value: Tensor, tiles: CubeTiles, selection: KernelSelection,
                 scaling: float, launch: FlashLaunch | None = None) -> Tensor:
    """Attention of every query over its tile's listed units.

    Args:
        query: (B, H, S, D); key, value: (B, Hkv, S, D); bf16/fp16, last dim contiguous.
        launch: the kernel's launch configuration (default: ``default_launch``).
    Returns:
        (B, S, H, D) in the query dtype (rows of padding positions unwritten).
    """
    bsz, heads, seq, dim = query.shape
    kv_heads = key.shape[1]
    units, tile = tiles.num_units, tiles.tile
    out = torch.empty(bsz, seq, heads, dim, dtype=query.dtype, device=query.device)
    bits = selection.bits
    launch = launch or default_launch(query.device)
    keys, values = (slot_order(x, tiles).view(-1, dim) for x in (key, value))  # (B * Hkv * U * T, D)
    if launch.tma:
        keys, values = (TensorDescriptor.from_tensor(x, block_shape=[tile, dim]) for x in (keys, values))
    grid = (bsz * heads * units,)
    _sparse_flash_kernel[grid](
        query, query.stride(0), query.stride(1), query.stride(2), keys, values,
        out, out.stride(0), out.stride(1), out.stride(2), tiles.slot_pos, tiles.key_pos, tiles.columns,
        selection.lists, selection.counts, selection.full_counts, tiles.fixed, tiles.fixed_visible,
        selection.counts if bits is None else bits,
        scaling * math.log2(math.e), heads, kv_heads, units, tiles.fixed.shape[1],
        T=tile, C=tiles.num_columns, D=dim, ROW_BITS=bits is not None, TMA=launch.tma, num_warps=launch.num_warps,
        num_stages=launch.num_stages,
    )
    return out
