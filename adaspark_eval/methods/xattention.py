"""``xattention``: XAttention (arXiv 2503.16428), block-sparse prefill attention chosen by antidiagonal scores.

Per layer, query head and query block of ``xattn_block`` positions: every query block scores every key block
at or before it by the sum of the attention along strided antidiagonals, and keeps the fewest key blocks
whose scores reach ``xattn_threshold`` of the row's total (the first and the diagonal block always).

Antidiagonal scoring (``antidiagonal_scores``): the sequence is cut into ``xattn_stride``-long groups; query
group ``r`` is the concatenation of its queries in reverse order, key group ``c`` of its keys in order, so
that one dot product of length ``stride * D`` is the sum of ``q . k`` along the antidiagonal of the
(stride x stride) tile (r, c). Scaled by ``scaling / stride``, softmaxed over the key groups ``c <= r``,
summed over the groups of each (query block, key block): the block scores. Selection
(``threshold_blocks``): per query block, the first block and the diagonal block, then the others by
descending score while the kept sum is below ``threshold`` times the row's sum.

Applied to every query of the prefill (text and visual: the method sparsifies prefill attention as a whole)
over every key; decode steps are dense. FFN dense. ``xattn_threshold = 1`` keeps every block: the rule is
then None (the stock model, no estimation). FLOPs: the kept blocks' key/query pairs under the causal mask
(``attention``), and the scoring's dot products, ``stride`` head-dim rows each (``selection``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.methods.base import Method, dense_knobs, fraction
from adaspark_eval.methods.block_prefill import BlockPrefillRule
from adaspark_eval.sparse.blocks import causal_blocks, cumulative_keep, num_blocks

if TYPE_CHECKING:
    from adaspark_eval.sparse.runtime import SparseRuntime


def antidiagonal_scores(query: Tensor, key: Tensor, real: Tensor, block: int, stride: int, scaling: float,
                        chunk_blocks: int) -> tuple[Tensor, Tensor]:
    """XAttention's block scores of a prefill.

    Args:
        query: (B, H, S, D); key: (B, Hkv, S, D) post-RoPE; real: (B, S) bool non-padding positions.
        block: positions per block (a multiple of ``stride``); chunk_blocks: query blocks scored at a time (memory:
            B * H * chunk_blocks * block / stride * S / stride floats).
    Returns:
        scores (B, H, Qb, Kb) float32, zero above the block diagonal; dots (B,) long, head-dim rows of dot
        products computed, over all heads (each group dot product is ``stride`` of them).
    """
    bsz, heads, seq, dim = query.shape
    blocks = num_blocks(seq, block)
    padded = blocks * block
    groups, per_block = padded // stride, block // stride
    pad = (0, 0, 0, padded - seq)
    q = torch.nn.functional.pad(query.float() * real[:, None, :, None], pad)
    k = torch.nn.functional.pad(key.float() * real[:, None, :, None], pad)
    k = k.repeat_interleave(heads // key.shape[1], dim=1)
    q_groups = q.view(bsz, heads, groups, stride, dim).flip(3).reshape(bsz, heads, groups, stride * dim)
    k_groups = k.view(bsz, heads, groups, stride, dim).reshape(bsz, heads, groups, stride * dim)
    group_real = torch.nn.functional.pad(real, (0, padded - seq)).view(bsz, groups, stride).any(dim=-1)  # (B, G)
    scores = torch.zeros(bsz, heads, blocks, blocks, device=query.device)
    dots = 0
    for first in range(0, blocks, chunk_blocks):
        last = min(first + chunk_blocks, blocks)
        rows, cols = slice(first * per_block, last * per_block), last * per_block
        logits = torch.einsum("bhrd,bhcd->bhrc", q_groups[:, :, rows], k_groups[:, :, :cols]) * (scaling / stride)
        dots += (rows.stop - rows.start) * cols
        r = torch.arange(rows.start, rows.stop, device=query.device)
        allowed = (torch.arange(cols, device=query.device)[None, :] <= r[:, None])[None] & group_real[:, None, :cols]
        probs = torch.softmax(logits.masked_fill(~allowed[:, None], -torch.inf), dim=-1)
        probs = torch.nan_to_num(probs) * group_real[:, None, rows, None]  # rows of padding only: zeros
        summed = probs.view(bsz, heads, last - first, per_block, last, per_block).sum(dim=(3, 5))
        scores[:, :, first:last, :last] = summed
    return scores, torch.full((bsz,), dots * heads * stride, dtype=torch.long, device=query.device)


def threshold_blocks(scores: Tensor, threshold: float) -> Tensor:
    """XAttention's selection: per query block, the first and the diagonal key block, then the others by
    descending score until the kept sum reaches ``threshold`` of the row's sum (``cumulative_keep``).

    Args:
        scores: (B, H, Qb, Kb) block scores (``antidiagonal_scores``).
    Returns:
        (B, H, Qb, Kb) bool, within the causal blocks.
    """
    blocks = scores.shape[-1]
    causal = causal_blocks(blocks, scores.device)
    forced = torch.eye(blocks, dtype=torch.bool, device=scores.device)
    forced[:, 0] = True
    return cumulative_keep(scores, threshold, causal.expand_as(scores), forced.expand_as(scores))


class XAttentionRule(BlockPrefillRule):
    """XAttention on ``runtime``'s prefills; ``blocks``: the kept blocks of each layer of the last prefill."""

    def __init__(self, runtime: SparseRuntime, threshold: float, stride: int, block: int) -> None:
        super().__init__(runtime, block)
        self.threshold = threshold
        self.stride = stride

    def choose(self, layer: int, query: Tensor, key: Tensor, real: Tensor,
               scaling: float) -> tuple[Tensor, dict[str, Tensor]]:
        """The blocks whose antidiagonal scores reach the threshold; the scoring dot products as its cost."""
        chunk = max(1, self.runtime.config.query_chunk // self.block)
        scores, dots = antidiagonal_scores(query, key, real, self.block, self.stride, scaling, chunk)
        return threshold_blocks(scores, self.threshold), {"score_dots": dots}


@dataclass(frozen=True)
class XAttention(Method):
    """XAttention with blocks of ``xattn_block`` positions, antidiagonal stride ``xattn_stride`` and cumulative
    threshold ``xattn_threshold``. Defaults: the paper's video-understanding setting (stride 16, threshold 0.9,
    blocks of 128), the one its Video-MME numbers were measured with."""

    name = "xattention"
    summary = "XAttention: per head, the key blocks whose antidiagonal scores reach --xattn-threshold"
    xattn_threshold: float = 0.9
    xattn_stride: int = 16
    xattn_block: int = 128

    def validate(self) -> None:
        fraction("xattn_threshold", self.xattn_threshold)
        if self.xattn_stride < 1:
            raise ConfigError(f"xattn_stride={self.xattn_stride} must be >= 1: pass e.g. xattn_stride=16")
        if self.xattn_block < 1 or self.xattn_block % self.xattn_stride:
            raise ConfigError(f"xattn_block={self.xattn_block} is not a positive multiple of xattn_stride="
                              f"{self.xattn_stride}: pass e.g. xattn_block={8 * self.xattn_stride}")

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        return dense_knobs(knobs)

    def rule(self, runtime: SparseRuntime) -> XAttentionRule | None:
        """None at ``xattn_threshold = 1`` (every block kept: the dense model)."""
        if self.xattn_threshold >= 1.0:
            return None
        return XAttentionRule(runtime, self.xattn_threshold, self.xattn_stride, self.xattn_block)

    def describe(self, config: AdaSparkConfig) -> dict[str, Any]:
        return self.settings()
