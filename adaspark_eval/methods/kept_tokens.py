"""Attention that reads only the kept tokens' keys: what the token-removing methods share (FastV after its
pruning layer, VisionZip and DyCoke from layer 0).

Two paths compute it. ``pruned_attention`` is the reference: the sequence keeps its length, every query row is
evaluated over the kept keys at or before it (the reference ``sparse_attention`` with two units, kept and
removed, of which every query reads the first), in query chunks, under any padding mask. ``kept_attention``
gathers, for one sample without a padding mask, the kept keys and values (and at prefill the kept queries)
and attends them in one causal SDPA call (flash or memory-efficient on a GPU: no attention matrix is
materialised, the cost is that of the kept tokens); a removed query's row is zero there. Both count the
pairs and tokens of the kept real queries only (``kept_stats``), so the FLOP records do not depend on the path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from adaspark_eval.sparse.attention import Selection, sparse_attention
from adaspark_eval.sparse.stats import AttentionStats


def pruned_attention(query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None, keys: Tensor,
                     real: Tensor, scaling: float, chunk: int) -> tuple[Tensor, AttentionStats]:
    """Attention that reads only the kept keys: the reference ``sparse_attention`` over two units (kept
    keys, pruned keys) of which every query reads the first.

    Args:
        query: (B, H, Sq, D); key, value: (B, Hkv, Sk, D); keys: (B, Sk) bool kept tokens (the queries are
            the newest ``Sq``); real: (B, Sk) bool non-padding.
    Returns:
        output (B, Sq, H, D); statistics with ``pairs`` and ``tokens`` of the kept real queries only.
    """
    bsz, heads, q_len, _ = query.shape
    reads = torch.tensor([True, False], device=query.device)
    keep = [reads.expand(bsz, heads, min(chunk, q_len - start), 2) for start in range(0, q_len, chunk)]
    output, _ = sparse_attention(query, key, value, attention_mask, Selection(keep, chunk, True, AttentionStats()),
                                 (~keys).long(), scaling)
    return output, kept_stats(keys, real, q_len, heads)


def kept_attention(query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None, keys: Tensor,
                   real: Tensor, scaling: float, chunk: int) -> tuple[Tensor, AttentionStats]:
    """Attention that reads only the kept keys, computed on the kept tokens only where it can be.

    Args:
        query: (B, H, Sq, D); key, value: (B, Hkv, Sk, D) post-RoPE; keys: (B, Sk) bool kept tokens (the
            queries are the newest ``Sq``); real: (B, Sk) bool non-padding.
    Returns:
        output (B, Sq, H, D), zero on rows of removed queries on the gathered path; statistics with ``pairs``
        and ``tokens`` of the kept real queries only.
    """
    bsz, heads, q_len, _ = query.shape
    if bsz > 1 or attention_mask is not None or q_len not in (1, key.shape[2]):
        return pruned_attention(query, key, value, attention_mask, keys, real, scaling, chunk)
    columns = torch.nonzero(keys[0]).flatten()
    k, v = key[:, :, columns], value[:, :, columns]
    gqa = key.shape[1] != heads
    if q_len == 1:
        output = F.scaled_dot_product_attention(query, k, v, scale=scaling, enable_gqa=gqa)
    else:
        output = query.new_zeros(query.shape)
        output[:, :, columns] = F.scaled_dot_product_attention(query[:, :, columns], k, v, is_causal=True,
                                                               scale=scaling, enable_gqa=gqa)
    return output.transpose(1, 2).contiguous(), kept_stats(keys, real, q_len, heads)


def kept_stats(keys: Tensor, real: Tensor, q_len: int, heads: int) -> AttentionStats:
    """Pairs and tokens of the kept real queries (the newest ``q_len`` of ``keys`` (B, Sk)) over kept real keys."""
    queries = (keys & real)[:, -q_len:]
    seen = torch.cumsum(keys & real, dim=1)[:, -q_len:]  # kept real keys at or before each query
    return AttentionStats(pairs=(seen * queries).sum(dim=1) * heads, tokens=queries.sum(dim=1))
