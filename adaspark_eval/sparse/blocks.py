"""Block-sparse prefill attention: the pieces the sparse-prefill peers (``xattention``, ``flexprefill``) share.

The sequence is cut into blocks of ``block`` consecutive positions from position 0 (the last one shorter).
A method decides, per sample, query head and query block, which key blocks the block's queries read: a
(B, H, Qb, Kb) bool tensor, the *block mask*. Attention then runs over the kept blocks only, under the
original causal and padding mask (``attend_blocks``): SDPA in query chunks of whole blocks with the chunk's
token mask, exact, never a full (S, S) matrix.

Shapes: ``B`` batch, ``H`` query heads, ``Hkv`` key/value heads, ``S`` positions (a prefill: queries and
keys are the same positions), ``D`` head dim, ``Qb = Kb = ceil(S / block)`` blocks.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from adaspark_eval.sparse.attention import base_rows
from adaspark_eval.sparse.kernels.dispatch import KERNEL_DTYPES, MAX_TILE, use_kernels
from adaspark_eval.sparse.stats import AttentionStats


def num_blocks(seq: int, block: int) -> int:
    """Blocks of ``block`` positions covering ``seq`` positions."""
    return math.ceil(seq / block)


def causal_blocks(blocks: int, device: torch.device | None = None) -> Tensor:
    """(Qb, Kb) bool: key block ``j`` holds a key some query of block ``i`` may read (``j <= i``)."""
    index = torch.arange(blocks, device=device)
    return index[None, :] <= index[:, None]


def cumulative_keep(scores: Tensor, threshold: float, candidates: Tensor, forced: Tensor | None = None) -> Tensor:
    """The smallest set whose scores reach ``threshold`` of the candidates' total, taken greedily: the forced
    entries first, then the other candidates by descending score (ties: the earlier index), each kept while the
    sum of those taken before it is below ``threshold * total``. ``threshold >= 1`` keeps every candidate.

    Args:
        scores: (..., N) non-negative scores; candidates, forced: (..., N) bool (forced outside the candidates
            is ignored).
    Returns:
        (..., N) bool, a subset of the candidates.
    """
    if threshold >= 1.0:
        return candidates.clone()
    forced = candidates & (forced if forced is not None else torch.zeros_like(candidates))
    values = torch.where(candidates, scores.float(), 0.0)
    total = values.sum(dim=-1, keepdim=True)
    rank = torch.where(forced, math.inf, torch.where(candidates, values, -1.0))
    order = torch.argsort(rank, dim=-1, descending=True, stable=True)
    ordered = values.gather(-1, order)
    before = torch.cumsum(ordered, dim=-1) - ordered
    taken = (forced.gather(-1, order) | (before < threshold * total)) & candidates.gather(-1, order)
    return torch.zeros_like(candidates).scatter(-1, order, taken)


def top_count(scores: Tensor, count: int) -> Tensor:
    """(..., N) bool: the ``count`` highest of ``scores`` (..., N) along the last dim (ties: the earlier index)."""
    order = torch.argsort(scores.float(), dim=-1, descending=True, stable=True)[..., :count]
    return torch.zeros(scores.shape, dtype=torch.bool, device=scores.device).scatter(-1, order, True)


def block_means(x: Tensor, real: Tensor, block: int) -> Tensor:
    """Mean of ``x`` over the real tokens of each block (zeros for a block without one).

    Args:
        x: (B, H, S, D) queries or keys; real: (B, S) bool, non-padding positions.
    Returns:
        (B, H, Qb, D) float32.
    """
    bsz, heads, seq, dim = x.shape
    pad = num_blocks(seq, block) * block - seq
    weights = torch.nn.functional.pad(real.float(), (0, pad))
    summed = torch.nn.functional.pad(x.float() * real[:, None, :, None], (0, 0, 0, pad))
    sums = summed.view(bsz, heads, -1, block, dim).sum(dim=3)
    counts = weights.view(bsz, -1, block).sum(dim=2)
    return sums / counts.clamp_min(1)[:, None, :, None]


def block_pairs(block: int, seq: int, device: torch.device | None = None) -> Tensor:
    """(Qb, Kb) long: key/query pairs under the causal mask in each (query block, key block) of ``seq`` positions."""
    blocks = num_blocks(seq, block)
    size = torch.full((blocks,), block, dtype=torch.long, device=device)
    size[-1] = seq - (blocks - 1) * block
    pairs = size[:, None] * size[None, :]
    return torch.where(causal_blocks(blocks, device), pairs, 0) - torch.diag(size * (size - 1) // 2)


def masked_blocks(query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None, keep: Tensor, block: int,
                  chunk: int, scaling: float) -> tuple[Tensor, Tensor | None]:
    """The reference path of ``attend_blocks``: SDPA over query chunks of whole blocks, each against the keys up to
    its last position with the token mask of its blocks.

    Returns:
        output (B, S, H, D); pairs (B,) counted token by token under ``attention_mask`` (None without one).
    """
    bsz, heads, seq, _ = query.shape
    chunk = max(1, math.ceil(chunk / block)) * block
    outputs = []
    pairs = torch.zeros(bsz, dtype=torch.long, device=query.device)
    for start in range(0, seq, chunk):
        rows = slice(start, min(start + chunk, seq))
        end = rows.stop
        chosen = keep[:, :, start // block: num_blocks(end, block)]
        allowed = chosen.repeat_interleave(block, dim=2)[:, :, : end - start]
        allowed = allowed.repeat_interleave(block, dim=3)[..., :end]
        mask = base_rows(attention_mask, rows, seq, seq, bsz, query.device)[..., :end] & allowed
        if attention_mask is not None:
            pairs += mask.sum(dim=(1, 2, 3))
        outputs.append(torch.nn.functional.scaled_dot_product_attention(
            query[:, :, rows], key[:, :, :end], value[:, :, :end], attn_mask=mask, scale=scaling,
            enable_gqa=key.shape[1] != heads))
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), pairs if attention_mask is not None else None


def attend_blocks(query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None, keep: Tensor, block: int,
                  chunk: int, scaling: float, real: Tensor,
                  backend: str = "reference") -> tuple[Tensor, AttentionStats]:
    """Attention of each query over the key blocks its block keeps, under the original mask (``masked_blocks``,
    or the flash kernel).

    Args:
        query: (B, H, S, D); key, value: (B, Hkv, S, D), post-RoPE, a prefill (no cache).
        attention_mask: transformers' mask or None; keep: (B, H, Qb, Kb) bool block mask (a query block keeping
            its own block, so that every query reads a key).
        chunk: queries at a time of the reference path, rounded up to whole blocks (memory: B * H * chunk * S).
        real: (B, S) bool, non-padding positions (the rows the kept fraction is averaged over).
        backend: the ``backend`` knob: where ``dispatch.use_kernels`` picks the kernels, a bf16/fp16 prefill
            without padding mask, with blocks of at most ``MAX_TILE`` and a power-of-two head dim >= 16, runs on the
            flash kernel (``kernels.block_sparse``).
    Returns:
        output (B, S, H, D) and statistics with ``pairs`` (pairs computed: from the blocks without a padding mask,
        else counted token by token) and ``kept_fraction`` (per head: mean over query blocks holding a real token
        of kept / causal key blocks); the caller adds its estimation cost.
    """
    bsz, heads, seq, dim = query.shape
    blocks = keep.shape[-1]
    if (attention_mask is None and use_kernels(backend, query) and query.dtype in KERNEL_DTYPES and block <= MAX_TILE
            and dim >= 16 and not dim & (dim - 1)):
        from adaspark_eval.sparse.kernels.block_sparse import kernel_blocks

        output, pairs = kernel_blocks(query, key, value, keep, block, scaling), None
    else:
        output, pairs = masked_blocks(query, key, value, attention_mask, keep, block, chunk, scaling)
    if pairs is None:
        pairs = (keep * block_pairs(block, seq, query.device)).sum(dim=(1, 2, 3))
    causal = causal_blocks(blocks, query.device)
    kept = (keep & causal).sum(dim=-1).float() / causal.sum(dim=-1)  # (B, H, Qb)
    padded = torch.nn.functional.pad(real, (0, blocks * block - seq))
    rows = padded.view(bsz, blocks, block).any(dim=-1)  # (B, Qb)
    fraction = (kept * rows[:, None]).sum(dim=(0, 2)) / rows.sum().clamp_min(1)
    zeros = torch.zeros(bsz, dtype=torch.long, device=query.device)
    return output, AttentionStats(kept_fraction=fraction, selecting_rows=rows.sum(), score_dots=zeros,
                                  key_means=zeros.clone(), query_means=zeros.clone(), pairs=pairs)
