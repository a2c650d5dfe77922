"""``dycoke``: DyCoke (Tao et al., CVPR 2025, arXiv 2411.15024), temporal token merging before the language
model and dynamic pruning of the visual KV cache while decoding.

Two stages, as the paper and its code (github.com/KD-TAO/DyCoke) run them on LLaVA-OneVision:

- *Token temporal merging* (TTM, prefill): the video's frames are cut into windows of ``dycoke_window``
  (4). In a window of frames ``f0 f1 f2 f3`` each token of ``f1`` is compared with the token at the same
  place of ``f0``, ``f3`` with ``f2`` and ``f2`` with ``f0`` (cosine similarity of the LLM input
  embeddings; in general: odd offsets with the previous frame, even offsets with the window's first). Of
  each compared frame the most similar tokens are removed, all but ``int((1 - dycoke_merge) * n)`` of its
  ``n`` (the least similar stay); ``dycoke_threshold`` further spares a token whose similarity is below it
  (-1, the default: the paper's code has no threshold, the ratio alone decides). The paper calls this
  merging; its code drops the repeated tokens (their earlier copy stays), as here.
- *Dynamic KV pruning* (decode): at every decode step, the new token's attention in layer
  ``dycoke_layer - 1`` (mean over heads) scores the visual tokens still in the cache; when that score
  vector's cosine similarity with the previous step's is below ``dycoke_refresh`` (0.9), or at the first
  step, the ``int((1 - dycoke_prune) * n)`` highest of the ``n`` are chosen; layers from ``dycoke_layer`` on
  read only the chosen visual tokens (and all text) until the choice changes. Pruned entries stay in the
  cache and may be chosen again at a later step (the paper's dynamic pruning cache).

On Qwen2.5-VL a "frame" is a temporal group of two frames (one LLM token covers 2 frames x 2x2 patches);
TTM applies to videos, images are untouched. Kept tokens keep the positions of the full prompt
(``methods.reduction``). Defaults are the paper's (its code's ``dycoke_k=0.7``, ``dycoke_l=3``,
``dycoke_p=0.7``, window 4, refresh 0.9). Departure: the paper's code skips the second comparison pass
(``f2`` with ``f0``) in the last window of a video; here every window, a short last one included, is treated
alike.

FLOPs: TTM's similarities, 3 multiply-adds per embedding dimension per compared token (a dot product and two
norms), and at decode the score vectors' similarity (3 per visual token, from the second step), in the
``selection`` component; the scoring layer's attention is the layer's own (computed once, counted as its
pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.flops.analytic import MAC
from adaspark_eval.methods.base import Method, dense_knobs
from adaspark_eval.methods.kept_tokens import kept_attention, kept_stats
from adaspark_eval.methods.reduction import ReducedRule
from adaspark_eval.sparse.layout import PAD
from adaspark_eval.sparse.stats import AttentionStats
from adaspark_eval.sparse.topp import masked_softmax

if TYPE_CHECKING:
    from adaspark_eval.sparse.runtime import SparseRuntime


def compared_frames(frames: int, window: int) -> list[tuple[int, int]]:
    """(frame, the frame it is compared with) of TTM over ``frames`` frames in windows of ``window``, in the
    order they are compared: first each odd offset with the frame before it, then each even offset with the
    window's first frame."""
    pairs = []
    for start in range(0, frames, window):
        end = min(start + window, frames)
        pairs += [(f, f - 1) for f in range(start + 1, end, 2)]
        pairs += [(f, start) for f in range(start + 2, end, 2)]
    return pairs


def temporal_merge(frames: Tensor, window: int, merge: float, threshold: float) -> tuple[Tensor, int]:
    """TTM on one video.

    Args:
        frames: (T, n, D) the LLM input embeddings of its ``T`` frames (temporal groups) of ``n`` tokens.
    Returns:
        kept (T, n) bool, and the number of compared tokens (``n`` per compared frame).
    """
    count, tokens = frames.shape[:2]
    kept = torch.ones(count, tokens, dtype=torch.bool, device=frames.device)
    stay = int((1 - merge) * tokens)
    pairs = compared_frames(count, window)
    for frame, reference in pairs:
        similarity = F.cosine_similarity(frames[frame].float(), frames[reference].float(), dim=-1)  # (n,)
        order = torch.sort(similarity, descending=True, stable=True)[1]
        removed = torch.zeros(tokens, dtype=torch.bool, device=frames.device)
        removed[order[:tokens - stay]] = True
        kept[frame] = ~(removed & (similarity >= threshold))
    return kept, tokens * len(pairs)


class DyCokeRule(ReducedRule):
    """DyCoke on ``runtime``; ``chosen``: (B, S) visual tokens chosen at the latest decode refresh (None before
    the first decode step); ``previous``: each sample's score vector of the step before."""

    def __init__(self, runtime: SparseRuntime, method: DyCoke) -> None:
        super().__init__(runtime)
        self.method = method
        self.chosen: Tensor | None = None
        self.previous: list[Tensor | None] = []

    def prefill(self, inputs: dict[str, Any]) -> None:
        super().prefill(inputs)
        self.chosen, self.previous = None, []

    def reduce(self, kind: str, embeds: Tensor, grids: Sequence[tuple[int, int, int]]
               ) -> tuple[Tensor, Tensor, list[int]]:
        """TTM of each video (images untouched)."""
        kept = torch.ones(embeds.shape[0], dtype=torch.bool, device=embeds.device)
        flops, start = [], 0
        for t, h, w in grids:
            size = t * h * w
            if kind != "video" or self.method.dycoke_merge == 0:
                flops.append(0)
            else:
                frames = embeds[start:start + size].reshape(t, h * w, -1)
                video_kept, compared = temporal_merge(frames, self.method.dycoke_window, self.method.dycoke_merge,
                                                      self.method.dycoke_threshold)
                kept[start:start + size] = video_kept.flatten()
                flops.append(MAC * 3 * embeds.shape[1] * compared)
            start += size
        return kept, embeds, flops

    def attend(self, layer: int, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
               scaling: float) -> tuple[Tensor, AttentionStats] | None:
        """Prefill: the TTM-kept keys; decode: scoring in layer ``L - 1``, the chosen visual keys from ``L``."""
        if self.runtime.records[-1].phase == "prefill" or self.method.dycoke_prune == 0:
            return super().attend(layer, query, key, value, attention_mask, scaling)
        layout = self.runtime.layout_on(query.device)
        real = layout.unit != PAD
        keys = self.keys(layer, key.shape[2], key.device)
        keys = real if keys is None else keys & real
        if layer == self.method.dycoke_layer - 1:
            return self._score(query, key, value, keys, layout.is_visual, scaling)
        if layer >= self.method.dycoke_layer and self.chosen is not None:
            keys = keys & ~(layout.is_visual & ~F.pad(self.chosen, (0, key.shape[2] - self.chosen.shape[1])))
        return kept_attention(query, key, value, attention_mask, keys, real, scaling, self.runtime.config.query_chunk)

    def _score(self, query: Tensor, key: Tensor, value: Tensor, keys: Tensor, visual: Tensor, scaling: float
               ) -> tuple[Tensor, AttentionStats]:
        """The decode step's attention in the scoring layer, computed explicitly (its probabilities score the
        visual tokens), and the visual tokens chosen for the layers after it."""
        bsz, heads, q_len, dim = query.shape
        groups = key.shape[1]  # query head h reads key/value head h // (heads // groups)
        grouped = query.float().reshape(bsz, groups, -1, dim)  # (B, Hkv, H / Hkv * Sq, D)
        logits = (grouped @ key.float().transpose(2, 3)).reshape(bsz, heads, q_len, -1) * scaling
        positions = torch.arange(key.shape[2], device=key.device)
        reads = keys[:, None, None, :] & (positions <= positions[-q_len:, None])[None, None]  # (B, 1, Sq, Sk)
        probs = masked_softmax(logits, reads)  # (B, H, Sq, Sk)
        output = (probs.reshape(bsz, groups, -1, key.shape[2]) @ value.float()).reshape(bsz, heads, q_len, dim)
        output = output.to(query.dtype).transpose(1, 2).contiguous()
        candidates = visual & keys  # (B, Sk): visual tokens in the cache
        scores = probs[:, :, -1].mean(dim=1)  # (B, Sk) the newest token's, mean over heads
        chosen = torch.zeros_like(candidates) if self.chosen is None else F.pad(
            self.chosen, (0, key.shape[2] - self.chosen.shape[1]))
        compared = torch.zeros(bsz, dtype=torch.long, device=key.device)
        for b in range(bsz):
            current = scores[b, candidates[b]]
            before = self.previous[b] if len(self.previous) > b else None
            stale = before is None or before.shape != current.shape or float(
                F.cosine_similarity(current, before, dim=0)) < self.method.dycoke_refresh
            if before is not None and before.shape == current.shape:
                compared[b] = current.numel()
            if stale:
                stay = int((1 - self.method.dycoke_prune) * current.numel())
                order = torch.sort(current, descending=True, stable=True)[1]
                top = torch.nonzero(candidates[b]).flatten()[order[:stay]]
                chosen[b] = False
                chosen[b, top] = True
            self.previous[b:b + 1] = [current]
        self.chosen = chosen
        stats = kept_stats(keys, keys, q_len, heads)
        stats.selection_flops = MAC * 3 * compared
        return output, stats


@dataclass(frozen=True)
class DyCoke(Method):
    """TTM before the language model (``dycoke_window``, ``dycoke_merge``, ``dycoke_threshold``) and dynamic
    KV pruning while decoding (``dycoke_layer``, ``dycoke_prune``, ``dycoke_refresh``)."""

    name = "dycoke"
    dense_decode = False  # removed tokens are no keys at decode, and its KV pruning acts there
    summary = "DyCoke: drop tokens repeated across neighbouring frames (--dycoke-merge), prune the KV cache in decode"
    dycoke_window: int = 4
    dycoke_merge: float = 0.7
    dycoke_threshold: float = -1.0
    dycoke_layer: int = 3
    dycoke_prune: float = 0.7
    dycoke_refresh: float = 0.9

    def validate(self) -> None:
        if self.dycoke_window < 2:
            raise ConfigError(f"dycoke_window={self.dycoke_window} compares no frames: pass 2 or more, e.g. 4")
        for name in ("dycoke_merge", "dycoke_prune"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name}={getattr(self, name)} is outside [0, 1): pass the fraction removed, "
                                  f"e.g. {name}=0.7 (0: off)")
        for name in ("dycoke_threshold", "dycoke_refresh"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)} is not a cosine similarity: pass a value in "
                                  f"[-1, 1], e.g. {name}={getattr(DyCoke, name)}")
        if self.dycoke_layer < 1:
            raise ConfigError(f"dycoke_layer={self.dycoke_layer} leaves no layer to score in: pass 1 or more, e.g. 3")

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        return dense_knobs(knobs)

    def rule(self, runtime: SparseRuntime) -> DyCokeRule | None:
        """None with both stages off (``dycoke_merge = dycoke_prune = 0``: the dense model)."""
        if self.dycoke_layer >= runtime.num_layers:
            raise ConfigError(f"dycoke_layer={self.dycoke_layer} leaves no layer to prune in this "
                              f"{runtime.num_layers}-layer model: pass 1..{runtime.num_layers - 1}")
        return None if self.dycoke_merge == 0 and self.dycoke_prune == 0 else DyCokeRule(runtime, self)

    def describe(self, config: AdaSparkConfig) -> dict[str, Any]:
        return self.settings()
