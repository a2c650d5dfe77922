"""``visionzip``: VisionZip (Yang et al., CVPR 2025, arXiv 2412.04467), visual tokens chosen inside the
vision encoder before the language model.

VisionZip keeps, per image, the *dominant* tokens, those that receive the most attention in the vision
encoder, and a few *contextual* tokens: the other tokens are split into groups around targets spaced
uniformly among them, each token joining the target whose key it is most similar to, and each group is
averaged into one token. Its settings of LLaVA-1.5 keep 192 / 128 / 64 of 576 tokens, 162 + 30, 108 + 20
and 54 + 10: contextual tokens are 15.6 % of those kept in every setting.

Here, on Qwen2.5-VL:

- *what stands in for [CLS]*: Qwen2.5-VL's vision encoder has no [CLS] token (nor does SigLIP, for which
  the paper uses the mean attention each token receives). A token's score is the attention its patches
  receive in the encoder's last full-attention block (``fullatt_block_indexes[-1]``, the last block of the
  7B), averaged over heads, over the queries of its frame group and over its 2x2 patches. That block attends
  within a frame group (two frames), so the scores are computed one frame group at a time (at most one
  frame group's attention matrix exists at once);
- *per frame group*: each frame group (an image, or two frames of a video) keeps
  ``ceil(visionzip_keep * n)`` of its ``n`` LLM tokens, ``round(visionzip_contextual * kept)`` of them
  contextual, the rest dominant (ties by the earlier token). A group's scores share one softmax domain,
  and every group keeps tokens: no stretch of the video is dropped whole;
- *contextual tokens*: the similarity is the cosine of the tokens' keys in the scoring block (averaged over
  heads and over the token's 2x2 patches), targets are every ``R // C``-th of the ``R`` remaining tokens (in
  order), and a group's token is the mean of its members' LLM input embeddings (the merger's output; the
  paper averages the encoder's features before its projector: Qwen2.5-VL's merger maps four patches to
  one token, so the merged embedding is taken after it), placed at its target's position;
- *positions*: kept tokens keep the positions of the full prompt (``methods.reduction``).

FLOPs: the scores' ``q . k`` products (heads x patches^2 x head dim per frame group), the keys' norms and
the target similarities (``R`` norms and ``(R - C) x C`` dot products of the head dim), multiply-adds only
(softmax, averages not counted, as elsewhere), in the ``selection`` component; the vision encoder itself
runs whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision
from transformers.vision_utils import get_vision_window_index

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.flops.analytic import MAC
from adaspark_eval.methods.base import Method, dense_knobs, fraction
from adaspark_eval.methods.reduction import ReducedRule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adaspark_eval.sparse.runtime import SparseRuntime

CALLS_KEPT = 4  # encoder calls whose scores a probe keeps (a prompt's image call and video call, and spares)


def group_counts(tokens: int, keep: float, contextual: float) -> tuple[int, int]:
    """(dominant, contextual) tokens a frame group of ``tokens`` keeps: ``ceil(keep * tokens)`` in all,
    ``round(contextual * kept)`` of them contextual."""
    kept = min(tokens, max(1, math.ceil(keep * tokens)))
    merged = min(round(contextual * kept), kept)
    return kept - merged, merged


def select_group(scores: Tensor, metric: Tensor, dominant: int, contextual: int) -> tuple[Tensor, Tensor]:
    """VisionZip on one frame group.

    Args:
        scores: (n,) attention each token receives; metric: (n, d) each token's key.
        dominant, contextual: the counts (``group_counts``).
    Returns:
        kept (n,) bool: the dominant tokens and the contextual targets; owner (n,) long: the kept token each
        token is merged into (itself for a kept token; -1 for a token dropped, when ``contextual`` is 0).
    """
    n = scores.shape[0]
    order = torch.sort(scores.float(), descending=True, stable=True)[1]
    kept = torch.zeros(n, dtype=torch.bool, device=scores.device)
    kept[order[:dominant]] = True
    owner = torch.where(kept, torch.arange(n, device=scores.device), -1)
    remaining = torch.nonzero(~kept).flatten()  # in order
    if contextual == 0 or remaining.numel() == 0:
        return kept, owner
    step = max(1, remaining.numel() // contextual)
    targets = remaining[::step][:contextual]
    kept[targets] = True
    owner[targets] = targets
    others = remaining[~torch.isin(remaining, targets)]
    if others.numel():
        unit = F.normalize(metric.float(), dim=-1)
        similarity = unit[others] @ unit[targets].T  # (R - C, C)
        owner[others] = targets[similarity.argmax(dim=-1)]
    return kept, owner


def merge_embeddings(embeds: Tensor, owner: Tensor) -> Tensor:
    """``embeds`` (n, D) with each kept token's row the mean of the rows it owns (``owner`` (n,))."""
    members = owner >= 0
    sums = torch.zeros_like(embeds, dtype=torch.float32).index_add_(0, owner[members], embeds[members].float())
    counts = torch.zeros(embeds.shape[0], device=embeds.device).index_add_(
        0, owner[members], torch.ones(int(members.sum()), device=embeds.device))
    owns = counts > 0
    out = embeds.clone()
    out[owns] = (sums[owns] / counts[owns, None]).to(embeds.dtype)
    return out


@dataclass
class EncoderCall:
    """What the probe recorded of one vision-encoder call: ``grids`` (patch units), per LLM token in the
    prompt's order ``scores`` (N,) and ``metric`` (N, d), and the score ``q . k`` products of each grid."""

    grids: list[tuple[int, int, int]]
    scores: Tensor
    metric: Tensor
    dots: list[int]


@dataclass
class VisionProbe:
    """Hooks on a model's vision encoder recording VisionZip's scores at every call. One probe serves the
    VisionZip rules that follow each other on a runtime (a sweep's points), so that a sweep's vision-encoder
    memo, which answers later points from the first point's call, finds the scores of that call here.

    ``calls``: the latest ``CALLS_KEPT`` calls, oldest first."""

    runtime: SparseRuntime
    calls: list[EncoderCall] = field(default_factory=list)
    handles: list[Any] = field(default_factory=list)
    _call: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        visual = self.runtime.model.model.visual
        depth = len(visual.blocks)
        block = visual.blocks[max([i for i in visual.fullatt_block_indexes if 0 <= i < depth] or [depth - 1])]
        self.attention = block.attn
        self.handles = [visual.register_forward_pre_hook(self._start, with_kwargs=True),
                        block.attn.register_forward_pre_hook(self._block_inputs, with_kwargs=True),
                        block.attn.qkv.register_forward_hook(self._scores),
                        visual.register_forward_hook(self._finish, with_kwargs=True)]

    def live(self) -> bool:
        """Whether a VisionZip rule of an attached runtime still uses this probe; otherwise its hooks go."""
        runtime = self.runtime
        if getattr(runtime.model, "adaspark", None) is runtime and getattr(runtime.rule, "probe", None) is self:
            return True
        for handle in self.handles:
            handle.remove()
        return False

    def _start(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self.live():
            self._call = {"grid_thw": kwargs.get("grid_thw", args[1] if len(args) > 1 else None)}

    def _block_inputs(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self.live():
            self._call["cu_seqlens"] = kwargs.get("cu_seqlens", args[1] if len(args) > 1 else None)
            self._call["position_embeddings"] = kwargs.get("position_embeddings")

    def _scores(self, module: nn.Module, args: tuple, qkv: Tensor) -> None:
        """Mean attention received per patch (window order), one frame group at a time; head-mean keys."""
        if not self.live() or "cu_seqlens" not in self._call:
            return
        heads = self.attention.num_heads
        query, key = qkv.reshape(qkv.shape[0], 3, heads, -1).permute(1, 0, 2, 3)[:2].unbind(0)  # (P, H, d)
        query, key = apply_rotary_pos_emb_vision(query, key, *self._call["position_embeddings"])
        received = torch.empty(qkv.shape[0], dtype=torch.float32, device=qkv.device)
        bounds = self._call["cu_seqlens"].tolist()
        for start, end in zip(bounds[:-1], bounds[1:]):
            q, k = query[start:end].transpose(0, 1).float(), key[start:end].transpose(0, 1).float()  # (H, n, d)
            probs = torch.softmax(q @ k.transpose(1, 2) * self.attention.scaling, dim=-1)
            received[start:end] = probs.mean(dim=(0, 1))
        self._call["received"] = received
        self._call["keys"] = key.float().mean(dim=1)  # (P, d)
        self._call["lengths"] = [end - start for start, end in zip(bounds[:-1], bounds[1:])]

    def _finish(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        """Per LLM token, in the prompt's (raster) order; the call recorded."""
        call, self._call = self._call, {}
        if not self.live() or "received" not in call:
            return
        grid_thw, unit = call["grid_thw"], module.spatial_merge_size**2
        window_index, _ = get_vision_window_index(grid_thw, spatial_merge_size=module.spatial_merge_size,
                                                  window_size=module.window_size, patch_size=module.patch_size)
        window_index = window_index.to(call["received"].device)
        scores = torch.empty_like(call["received"][::unit])
        scores[window_index] = call["received"].reshape(-1, unit).mean(dim=1)
        keys = call["keys"].reshape(-1, unit, call["keys"].shape[-1]).mean(dim=1)
        metric = torch.empty_like(keys)
        metric[window_index] = keys
        grids = [tuple(int(v) for v in row) for row in grid_thw.tolist()]
        heads, head_dim = self.attention.num_heads, self.attention.head_dim
        dots = [heads * head_dim * t * (h * w) ** 2 for t, h, w in grids]
        self.calls = [*self.calls[-(CALLS_KEPT - 1):], EncoderCall(grids, scores, metric, dots)]

    def find(self, grids: list[tuple[int, int, int]]) -> EncoderCall | None:
        """The latest call on ``grids`` (patch units), or None."""
        return next((call for call in reversed(self.calls) if call.grids == grids), None)


class VisionZipRule(ReducedRule):
    """VisionZip on ``runtime``: each kind's tokens reduced frame group by frame group."""

    def __init__(self, runtime: SparseRuntime, keep: float, contextual: float) -> None:
        super().__init__(runtime)
        self.keep_fraction = keep
        self.contextual = contextual
        previous = getattr(runtime.rule, "probe", None)  # the rule this one replaces
        self.probe = previous if isinstance(previous, VisionProbe) else VisionProbe(runtime)

    def _encode(self, kind: str) -> EncoderCall:
        """The scores of this prompt's ``kind`` when the encoder did not run under the probe (its output came
        from a memo filled before this method was attached): the encoder is run again for them (not counted:
        the method itself encodes once)."""
        pixels, grid_thw = self.inputs[f"pixel_values{'_videos' if kind == 'video' else ''}"], \
            self.inputs[f"{kind}_grid_thw"]
        visual = self.runtime.model.model.visual
        visual(pixels.type(visual.dtype), grid_thw=grid_thw)
        return self.probe.calls[-1]

    def reduce(self, kind: str, embeds: Tensor, grids: Sequence[tuple[int, int, int]]
               ) -> tuple[Tensor, Tensor, list[int]]:
        merge = self.runtime.spatial_merge_size
        call = self.probe.find([(t, h * merge, w * merge) for t, h, w in grids]) or self._encode(kind)
        scores, metric = call.scores.to(embeds.device), call.metric.to(embeds.device)
        kept = torch.zeros(embeds.shape[0], dtype=torch.bool, device=embeds.device)
        owner = torch.full((embeds.shape[0],), -1, dtype=torch.long, device=embeds.device)
        flops, start = [], 0
        d = metric.shape[-1]
        for (t, h, w), dots in zip(grids, call.dots):
            similarity = 0
            for _ in range(t):
                rows = slice(start, start + h * w)
                dominant, contextual = group_counts(h * w, self.keep_fraction, self.contextual)
                group_kept, group_owner = select_group(scores[rows], metric[rows], dominant, contextual)
                kept[rows], owner[rows] = group_kept, torch.where(group_owner >= 0, group_owner + start, -1)
                remaining, targets = h * w - dominant, min(contextual, h * w - dominant)
                if targets:  # norms of the remaining keys, then the others against the targets
                    similarity += remaining * d + (remaining - targets) * targets * d
                start += h * w
            flops.append(MAC * (dots + similarity))
        return kept, merge_embeddings(embeds, owner), flops


@dataclass(frozen=True)
class VisionZip(Method):
    """Keep ``visionzip_keep`` of each frame group's tokens, ``visionzip_contextual`` of those as merged
    contextual tokens (defaults: the paper's 192 of 576, 30 of them contextual)."""

    name = "visionzip"
    dense_decode = False  # removed tokens are no keys at decode either
    summary = "VisionZip: per frame group keep the --visionzip-keep tokens most attended in the vision encoder"
    visionzip_keep: float = 0.333
    visionzip_contextual: float = 0.15625

    def validate(self) -> None:
        fraction("visionzip_keep", self.visionzip_keep)
        if not 0.0 <= self.visionzip_contextual < 1.0:
            raise ConfigError(f"visionzip_contextual={self.visionzip_contextual} is outside [0, 1): pass the share "
                              "of kept tokens that are merged contextual tokens, e.g. visionzip_contextual=0.15625")

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        return dense_knobs(knobs)

    def rule(self, runtime: SparseRuntime) -> VisionZipRule | None:
        """None at ``visionzip_keep = 1`` (every token kept, none merged: the dense model)."""
        return None if self.visionzip_keep >= 1.0 else VisionZipRule(runtime, self.visionzip_keep,
                                                                      self.visionzip_contextual)

    def describe(self, config: AdaSparkConfig) -> dict[str, Any]:
        return self.settings()
