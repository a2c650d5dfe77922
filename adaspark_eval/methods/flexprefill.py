"""``flexprefill``: FlexPrefill (arXiv 2502.20766), per-head sparse prefill attention with a pattern chosen per
input.

Per layer and query head, from the last block of queries ``Q^`` (the last ``flex_block`` positions):

1. Pattern search (``pattern_search``): the *true* distribution over key blocks, the attention of ``Q^`` over
   all keys (causal softmax) summed into key blocks and averaged over its rows, against the *estimated* one,
   the softmax of the mean query of ``Q^`` against the key blocks' mean keys. Their Jensen-Shannon distance
   (the square root of the divergence, natural log) below ``flex_tau``: the head is *query-aware*, else
   *vertical-slash*.
2. Vertical-slash heads (``vertical_slash_blocks``): from the same attention of ``Q^``, the vertical scores
   (attention each key receives) and the slash scores (attention at each query-key offset), each a
   distribution; each keeps the fewest lines, by descending score, that reach ``flex_gamma`` of it, and at
   least ``flex_min_budget`` lines. A query block reads a key block that holds a kept vertical line or a
   query-key pair on a kept slash line.
3. Query-aware heads (``query_aware_blocks``): the softmax of every query block's mean query against the key
   blocks' mean keys (block-causal), flattened and normalised over the whole head; the fewest blocks that
   reach ``flex_gamma`` of it, with the vertical-slash pattern at the minimum budget added.

Every query block reads the first key block and its own (diagonal) block. Applied to every query of the
prefill (text and visual) over every key; decode steps are dense; FFN dense. ``flex_gamma = 1`` keeps every
block: the rule is then None (the stock model, no search). FLOPs: the kept blocks' pairs (``attention``) and
the search's dot products and mean vectors (``selection``: ``Q^ . k`` over all keys, the mean query of ``Q^``
against the mean keys, the block means, and the block-mean scores when a head is query-aware).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.methods.base import Method, dense_knobs, fraction
from adaspark_eval.methods.block_prefill import BlockPrefillRule
from adaspark_eval.sparse.blocks import (block_means, causal_blocks, cumulative_keep, num_blocks,
                                         top_count)
from adaspark_eval.sparse.stats import AttentionStats

if TYPE_CHECKING:
    from adaspark_eval.sparse.runtime import SparseRuntime


def js_distance(p: Tensor, q: Tensor) -> Tensor:
    """Square root of the Jensen-Shannon divergence (natural log) of distributions ``p``, ``q`` (..., N)."""
    m = ((p + q) / 2).clamp_min(1e-30)
    divergence = 0.5 * torch.xlogy(p, p / m).sum(-1) + 0.5 * torch.xlogy(q, q / m).sum(-1)
    return divergence.clamp_min(0).sqrt()


def last_block_attention(query: Tensor, key: Tensor, real: Tensor, block: int, scaling: float) -> Tensor:
    """Causal softmax of the last ``block`` queries over every key.

    Args:
        query: (B, H, S, D); key: (B, Hkv, S, D); real: (B, S) bool.
    Returns:
        (B, H, n, S) float32, ``n = min(block, S)``; rows of padding are zeros.
    """
    heads, seq = query.shape[1], query.shape[2]
    n = min(block, seq)
    k = key.float().repeat_interleave(heads // key.shape[1], dim=1)
    logits = torch.einsum("bhqd,bhkd->bhqk", query[:, :, seq - n:].float(), k) * scaling
    positions = torch.arange(seq, device=query.device)
    allowed = (positions[None, :] <= positions[seq - n:, None])[None] & real[:, None, :]  # (B, n, S)
    probs = torch.nan_to_num(torch.softmax(logits.masked_fill(~allowed[:, None], -torch.inf), dim=-1))
    return probs * real[:, None, seq - n:, None]


def pattern_search(query: Tensor, key_means: Tensor, probs: Tensor, real: Tensor, block: int,
                   scaling: float) -> Tensor:
    """Jensen-Shannon distance between the estimated and the true key-block distribution of the last block.

    Args:
        query: (B, H, S, D); key_means: (B, H, Kb, D) block means of the keys (``block_means``), per query head;
        probs: (B, H, n, S) ``last_block_attention``; real: (B, S) bool.
    Returns:
        (B, H) float32.
    """
    bsz, heads, n, seq = probs.shape
    rows = real[:, seq - n:]
    blocks = key_means.shape[2]
    true = torch.nn.functional.pad(probs.sum(dim=2), (0, blocks * block - seq)).view(bsz, heads, blocks, block)
    true = true.sum(dim=-1) / rows.sum(dim=1).clamp_min(1)[:, None, None]
    mean_query = (query[:, :, seq - n:].float() * rows[:, None, :, None]).sum(dim=2)
    mean_query = mean_query / rows.sum(dim=1).clamp_min(1)[:, None, None]
    has_key = torch.nn.functional.pad(real, (0, blocks * block - seq)).view(bsz, blocks, block).any(dim=-1)
    logits = torch.einsum("bhd,bhkd->bhk", mean_query, key_means) * scaling
    estimated = torch.softmax(logits.masked_fill(~has_key[:, None], -torch.inf), dim=-1)
    return js_distance(estimated, true)


def vertical_slash_blocks(probs: Tensor, real: Tensor, block: int, gamma: float, budget: int) -> Tensor:
    """Key blocks of the vertical-slash pattern.

    Args:
        probs: (B, H, n, S) ``last_block_attention``; real: (B, S) bool.
        gamma: share of the vertical (and of the slash) distribution the kept lines reach; budget: lines kept at
            least, of each kind.
    Returns:
        (B, H, Qb, Kb) bool: a key block holding a kept vertical line, or a pair on a kept slash line.
    """
    bsz, heads, n, seq = probs.shape
    rows = real[:, seq - n:].sum(dim=1).clamp_min(1)[:, None, None]
    vertical = probs.sum(dim=2) / rows  # (B, H, S): attention each key receives
    offsets = (torch.arange(seq - n, seq, device=probs.device)[:, None] - torch.arange(seq, device=probs.device))
    slash = torch.zeros_like(vertical).scatter_add_(2, offsets.clamp_min(0).reshape(1, 1, -1).expand(bsz, heads, -1),
                                                     (probs * (offsets >= 0)).reshape(bsz, heads, -1)) / rows
    budget = min(budget, seq)
    keep_vertical = cumulative_keep(vertical, gamma, real[:, None].expand_as(vertical), top_count(vertical, budget))
    keep_slash = cumulative_keep(slash, gamma, torch.ones_like(slash, dtype=torch.bool), top_count(slash, budget))
    blocks = num_blocks(seq, block)
    pad = blocks * block - seq
    vertical_blocks = torch.nn.functional.pad(keep_vertical, (0, pad)).view(bsz, heads, blocks, block).any(dim=-1)
    # offsets a (query block i, key block j) pair holds: first query - last key .. last query - first key
    index = torch.arange(blocks, device=probs.device)
    first_q, last_q = index * block, (index * block + block - 1).clamp_max(seq - 1)
    low = (first_q[:, None] - (index * block + block - 1)[None, :]).clamp_min(0)
    high = (last_q[:, None] - (index * block)[None, :]).clamp(-1, seq - 1)
    seen = torch.nn.functional.pad(torch.cumsum(keep_slash.long(), dim=-1), (1, 0))  # seen[o]: kept offsets < o
    slash_blocks = (seen[..., (high + 1).flatten()] - seen[..., low.flatten()]).view(bsz, heads, blocks, blocks) > 0
    return (vertical_blocks[:, :, None, :] | slash_blocks) & causal_blocks(blocks, probs.device)


def query_aware_blocks(query_means: Tensor, key_means: Tensor, real: Tensor, block: int, gamma: float,
                       scaling: float) -> Tensor:
    """Key blocks of the query-aware pattern: block-mean attention, the fewest blocks reaching ``gamma`` of the
    head's total.

    Args:
        query_means, key_means: (B, H, Qb, D) and (B, H, Kb, D) block means; real: (B, S) bool.
    Returns:
        (B, H, Qb, Kb) bool.
    """
    bsz, heads, blocks, _ = query_means.shape
    seq = real.shape[1]
    has_token = torch.nn.functional.pad(real, (0, blocks * block - seq)).view(bsz, blocks, block).any(dim=-1)
    allowed = causal_blocks(blocks, real.device)[None] & has_token[:, None, :] & has_token[:, :, None]
    logits = torch.einsum("bhqd,bhkd->bhqk", query_means, key_means) * scaling
    probs = torch.nan_to_num(torch.softmax(logits.masked_fill(~allowed[:, None], -torch.inf), dim=-1))
    flat = probs.reshape(bsz, heads, -1)
    keep = cumulative_keep(flat, gamma, allowed[:, None].expand_as(probs).reshape(bsz, heads, -1))
    return keep.view(bsz, heads, blocks, blocks)


def flexprefill_blocks(query: Tensor, key: Tensor, real: Tensor, block: int, gamma: float, tau: float, budget: int,
                       scaling: float) -> tuple[Tensor, Tensor, AttentionStats]:
    """FlexPrefill's block mask of one layer.

    Args:
        query: (B, H, S, D); key: (B, Hkv, S, D) post-RoPE; real: (B, S) bool.
    Returns:
        keep (B, H, Qb, Kb) bool; query_aware (B, H) bool; the search's costs (``score_dots``, ``key_means``,
        ``query_means``, (B,) each).
    """
    bsz, heads, seq, _ = query.shape
    kv_heads = key.shape[1]
    blocks = num_blocks(seq, block)
    probs = last_block_attention(query, key, real, block, scaling)
    key_means = block_means(key, real, block).repeat_interleave(heads // kv_heads, dim=1)
    query_aware = pattern_search(query, key_means, probs, real, block, scaling) < tau
    n, tokens = probs.shape[2], real.sum(dim=1)
    last_rows = real[:, seq - n:].sum(dim=1)
    costs = AttentionStats(score_dots=torch.full_like(tokens, heads * (n * seq + blocks)),
                           key_means=tokens * kv_heads, query_means=last_rows * heads)
    keep = vertical_slash_blocks(probs, real, block, gamma, budget)
    if bool(query_aware.any()):
        aware = query_aware_blocks(block_means(query, real, block), key_means, real, block, gamma, scaling)
        minimum = vertical_slash_blocks(probs, real, block, 0.0, budget)
        keep = torch.where(query_aware[..., None, None], aware | minimum, keep)
        costs.score_dots += heads * blocks * blocks
        costs.query_means += tokens * heads
    forced = torch.eye(blocks, dtype=torch.bool, device=query.device)
    forced[:, 0] = True
    return keep | forced, query_aware, costs


class FlexPrefillRule(BlockPrefillRule):
    """FlexPrefill on ``runtime``'s prefills; of each layer of the last prefill, ``query_aware``: (B, H) heads that
    chose the query-aware pattern, ``blocks``: (B, H, Qb, Kb) kept blocks (for inspection)."""

    def __init__(self, runtime: SparseRuntime, gamma: float, tau: float, budget: int, block: int) -> None:
        super().__init__(runtime, block)
        self.gamma = gamma
        self.tau = tau
        self.budget = budget
        self.query_aware: dict[int, Tensor] = {}

    def prefill(self, inputs: dict[str, Any]) -> None:
        super().prefill(inputs)
        self.query_aware = {}

    def choose(self, layer: int, query: Tensor, key: Tensor, real: Tensor,
               scaling: float) -> tuple[Tensor, dict[str, Tensor]]:
        """Each head's pattern and blocks; the pattern search as its cost."""
        keep, self.query_aware[layer], costs = flexprefill_blocks(query, key, real, self.block, self.gamma, self.tau,
                                                                  self.budget, scaling)
        return keep, {"score_dots": costs.score_dots, "key_means": costs.key_means, "query_means": costs.query_means}


@dataclass(frozen=True)
class FlexPrefill(Method):
    """FlexPrefill with blocks of ``flex_block`` positions, cumulative-attention threshold ``flex_gamma``,
    Jensen-Shannon threshold ``flex_tau`` and at least ``flex_min_budget`` vertical and slash lines per head.
    Defaults: the authors' settings for Qwen2-7B (gamma 0.9, tau 0.1, blocks of 128, a minimum budget of 1,024)."""

    name = "flexprefill"
    summary = "FlexPrefill: per head query-aware or vertical-slash blocks reaching --flex-gamma of the attention"
    flex_gamma: float = 0.9
    flex_tau: float = 0.1
    flex_min_budget: int = 1024
    flex_block: int = 128

    def validate(self) -> None:
        fraction("flex_gamma", self.flex_gamma)
        if self.flex_tau < 0:
            raise ConfigError(f"flex_tau={self.flex_tau} is negative: pass a distance >= 0 (0: never query-aware), "
                              "e.g. flex_tau=0.1")
        if self.flex_min_budget < 0:
            raise ConfigError(f"flex_min_budget={self.flex_min_budget} is negative: pass lines >= 0, e.g. 1024")
        if self.flex_block < 1:
            raise ConfigError(f"flex_block={self.flex_block} must be >= 1: pass e.g. flex_block=128")

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        return dense_knobs(knobs)

    def rule(self, runtime: SparseRuntime) -> FlexPrefillRule | None:
        """None at ``flex_gamma = 1`` (every block kept: the dense model)."""
        if self.flex_gamma >= 1.0:
            return None
        return FlexPrefillRule(runtime, self.flex_gamma, self.flex_tau, self.flex_min_budget, self.flex_block)

    def describe(self, config: AdaSparkConfig) -> dict[str, Any]:
        return self.settings()
