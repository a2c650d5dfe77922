"""``fastv``: FastV-style visual token pruning by attention received.

Layers ``0..K`` (``fastv_layer``, 0-based) run on every token. In layer ``K`` each visual token is
scored by the attention it receives from the text queries after the last visual token (the question
and the assistant prompt: each query's softmax over its causal keys, averaged over those queries and
over heads; FastV itself uses the last token alone, which the question extends), and the
``ceil(fastv_keep * visual tokens)`` highest of each sample are kept (ties by the earlier token).
From layer ``K + 1`` on a pruned token is no key for any query, at prefill and at every decode step.

Records: pruned tokens are counted as not computed from layer ``K + 1`` on (no projections, no
attention row, no FFN: ``AttentionStats.tokens``, pairs of kept queries only, ``FfnStats.tokens``);
the scores of layer ``K`` count as selection work (their ``q . k`` dot products). The sequence keeps its
length, so positions and the KV cache stay transformers' own. Where the kernels run (``backend`` auto on a
GPU, triton, fa4) layers ``K..`` attend on the kept tokens gathered, in one causal SDPA call
(``kept_tokens.kept_attention``; a pruned row's output is zero); on the reference path
(``kept_tokens.pruned_attention``) a pruned row is still evaluated over the kept keys. Either way it gets no
FFN update and nothing of it reaches a kept token, so the two paths agree on every kept token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.methods.base import Method, dense_knobs, fraction
from adaspark_eval.methods.kept_tokens import kept_attention, pruned_attention
from adaspark_eval.sparse.kernels.dispatch import use_kernels
from adaspark_eval.sparse.layout import PAD, TokenLayout
from adaspark_eval.sparse.stats import AttentionStats
from adaspark_eval.sparse.topp import fixed_ratio_mask, masked_softmax

if TYPE_CHECKING:
    from adaspark_eval.sparse.runtime import SparseRuntime


def received_attention(query: Tensor, key: Tensor, layout: TokenLayout, scaling: float) -> tuple[Tensor, Tensor]:
    """Mean attention each token receives from the scoring queries (text after the last visual token).

    Args:
        query: (B, H, S, D); key: (B, Hkv, S, D), post-RoPE, of a prefill that ``layout`` covers.
    Returns:
        (B, S) float attention received, averaged over scoring queries and heads; (B,) ``q . k`` dot
        products computed, over all heads.
    """
    _, heads, seq, dim = query.shape
    positions = torch.arange(seq, device=query.device)
    last_visual = torch.where(layout.is_visual, positions, -1).amax(dim=1)
    scoring = layout.is_text & (positions > last_visual[:, None])
    rows = torch.argsort((~scoring).to(torch.uint8), dim=1, stable=True)[:, : int(scoring.sum(dim=1).max())]
    row_ok = scoring.gather(1, rows)  # (B, n): a scoring query (False: filler of a shorter sample)
    q = query.gather(2, rows[:, None, :, None].expand(-1, heads, -1, dim))
    k = key.repeat_interleave(heads // key.shape[1], dim=1)
    reads = (positions <= rows[..., None]) & (layout.unit != PAD)[:, None, :] & row_ok[..., None]  # (B, n, S)
    probs = masked_softmax(torch.einsum("bhqd,bhkd->bhqk", q.float(), k.float()) * scaling, reads[:, None])
    received = probs.sum(dim=(1, 2)) / (heads * row_ok.sum(dim=1).clamp_min(1))[:, None]
    return received, reads.sum(dim=(1, 2)) * heads


class FastVRule:
    """FastV on ``runtime``: ``kept`` (B, S) tokens kept after layer ``layer`` in the sequence in flight
    (None before the pruning layer ran)."""

    def __init__(self, runtime: SparseRuntime, layer: int, keep: float) -> None:
        self.runtime = runtime
        self.layer = layer
        self.keep = keep
        self.kept: Tensor | None = None

    def prefill(self, inputs: dict[str, Any]) -> None:
        self.kept = None

    def attend(self, layer: int, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
               scaling: float) -> tuple[Tensor, AttentionStats] | None:
        """Layer ``K`` of a prefill scores and prunes; later layers read the kept keys only."""
        layout = self.runtime.layout_on(query.device)
        real, chunk = layout.unit != PAD, self.runtime.config.query_chunk
        # the gathered path where the kernels run (``backend``: it changes no kept set, only the sums' order)
        attend = kept_attention if use_kernels(self.runtime.config.backend, query) else pruned_attention
        if layer == self.layer and self.runtime.records[-1].phase == "prefill":
            received, score_dots = received_attention(query, key, layout, scaling)
            self.kept = ~layout.is_visual | fixed_ratio_mask(received, self.keep, layout.is_visual)
            output, stats = attend(query, key, value, attention_mask, torch.ones_like(real), real, scaling, chunk)
            stats.score_dots = score_dots
            return output, stats
        if layer <= self.layer or self.kept is None:
            return None
        keys = F.pad(self.kept.to(key.device), (0, key.shape[2] - self.kept.shape[1]), value=True)
        return attend(query, key, value, attention_mask, keys, real, scaling, chunk)

    def ffn_keep(self, layer: int, q_len: int) -> Tensor | None:
        """The kept tokens in the prefill's layers after ``K``; decode tokens are kept."""
        if layer <= self.layer or self.kept is None or q_len != self.kept.shape[1]:
            return None
        return self.kept


@dataclass(frozen=True)
class FastV(Method):
    """Prune visual tokens after layer ``fastv_layer``, keeping the fraction ``fastv_keep``."""

    name = "fastv"
    summary = "FastV: after layer --fastv-layer keep the --fastv-keep most-attended visual tokens"
    dense_decode = False  # pruned tokens are no keys at decode either
    fastv_layer: int = 2
    fastv_keep: float = 0.5

    def validate(self) -> None:
        if self.fastv_layer < 0:
            raise ConfigError(f"fastv_layer={self.fastv_layer} is negative: pass a layer index >= 0, e.g. 2")
        fraction("fastv_keep", self.fastv_keep)

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        return dense_knobs(knobs)

    def rule(self, runtime: SparseRuntime) -> FastVRule | None:
        """None at ``fastv_keep = 1`` (nothing pruned: the dense model)."""
        if self.fastv_layer >= runtime.num_layers - 1:
            raise ConfigError(f"fastv_layer={self.fastv_layer} leaves no layer to prune in this "
                              f"{runtime.num_layers}-layer model: pass 0..{runtime.num_layers - 2}")
        return None if self.fastv_keep >= 1.0 else FastVRule(runtime, self.fastv_layer, self.fastv_keep)

    def describe(self, config: AdaSparkConfig) -> dict[str, Any]:
        return self.settings()
