"""What each forward of the sparse model did: kept fractions, entropies, and work actually computed.

Counts are per sample (shape ``(B,)``) and stay on the device until ``summary`` reads them, so recording
costs no synchronisation on the hot path. They are the input of the FLOP accounting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class AttentionStats:
    """One layer's attention in one forward.

    Attributes:
        kept_fraction: (H,) mean over selecting queries of kept / candidate units; None for a layer that does
            not select (dense), NaN when it selects but no query had candidates (``selecting_rows`` 0: a
            text-only forward), so that recording needs no device-to-host read.
        entropy: () mean selection entropy in nats over selecting queries and heads; None / NaN likewise.
        selecting_rows: () number of (sample, query) rows that selected.
        score_dots: (B,) ``q . kbar`` dot products computed, over all heads.
        key_means: (B,) key vectors summed into unit means, over all key/value heads.
        query_means: (B,) query vectors summed into unit means (``select=cube``), over all heads.
        pairs: (B,) key/query pairs attended, over all heads.
        dense_pairs: (B,) key/query pairs dense causal attention computes, over all heads.
        tokens: (B,) tokens through the q/k/v/o projections, or None for every real token (a method that
            prunes tokens, such as FastV, sets it).
        kept_units / block_units: (B,) (query unit, key unit) pairs kept, and those the attention kernel computes
            (``backend=fa4`` with 64-token cubes: the union of the two cubes of a query block, the extra work);
            None for the other kernels, which compute the kept ones only.
        selection_flops: (B,) FLOPs of a method's own selection work that is not ``q . kbar`` rows of the LLM's
            head dim (VisionZip's scores in the vision encoder, DyCoke's similarities), or None.
    """

    kept_fraction: Tensor | None = None
    entropy: Tensor | None = None
    selecting_rows: Tensor | None = None
    score_dots: Tensor | None = None
    key_means: Tensor | None = None
    query_means: Tensor | None = None
    pairs: Tensor | None = None
    dense_pairs: Tensor | None = None
    tokens: Tensor | None = None
    kept_units: Tensor | None = None
    block_units: Tensor | None = None
    selection_flops: Tensor | None = None


@dataclass
class FfnStats:
    """One layer's FFN in one forward. All (B,) long.

    Attributes:
        tokens: tokens that went through the MLP; dense_tokens: real (non-padding) tokens.
        visual_kept / visual: visual tokens kept / present.
    """

    tokens: Tensor
    dense_tokens: Tensor
    visual_kept: Tensor
    visual: Tensor


@dataclass
class ForwardRecord:
    """One call of the language model: the prefill, or one decode step."""

    phase: str  # "prefill" | "decode"
    q_len: int
    kv_len: int
    batch: int
    attention: dict[int, AttentionStats] = field(default_factory=dict)
    ffn: dict[int, FfnStats] = field(default_factory=dict)

    def block_work(self, b: int = 0) -> dict[str, int] | None:
        """Sample ``b``'s (query unit, key unit) pairs kept and computed by the attention blocks over the layers
        that report them (``backend=fa4``), or None where none does."""
        layers = [a for a in self.attention.values() if a.kept_units is not None and a.block_units is not None]
        if not layers:
            return None
        return {"kept_units": sum(int(a.kept_units[b]) for a in layers),
                "block_units": sum(int(a.block_units[b]) for a in layers)}

    def layer_summary(self, num_layers: int) -> list[dict[str, Any]]:
        """Per layer: kept-cube fraction (mean and per head), entropy, FFN active fraction.

        A layer that selected nothing (dense) reports kept fraction 1.0; a forward without visual tokens
        reports FFN active fraction 1.0.
        """
        rows = []
        for layer in range(num_layers):
            attn = self.attention.get(layer)
            ffn = self.ffn.get(layer)
            selected = attn is not None and attn.kept_fraction is not None and int(attn.selecting_rows) > 0
            per_head = attn.kept_fraction.tolist() if selected else None
            visual = int(ffn.visual.sum()) if ffn is not None else 0
            rows.append(
                {
                    "layer": layer,
                    "kept_cube_fraction": sum(per_head) / len(per_head) if per_head else 1.0,
                    "kept_cube_fraction_per_head": per_head,
                    "entropy": float(attn.entropy) if selected and attn.entropy is not None else None,
                    "ffn_active_fraction": int(ffn.visual_kept.sum()) / visual if visual else 1.0,
                }
            )
        return rows
