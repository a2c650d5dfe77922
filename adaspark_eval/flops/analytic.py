"""FLOPs from a model's shape and counts of work: the cost of each component, and the dense formula of a
whole sample from its token counts. All results in FLOPs, 2 per multiply-add."""

from __future__ import annotations

from collections.abc import Sequence

from adaspark_eval.flops.dims import ModelDims, TextDims, VisionDims
from adaspark_eval.flops.sample import ComponentFlops, SampleFlops

MAC = 2  # FLOPs per multiply-add
Grid = tuple[int, int, int]  # (t, h, w) in patches: one row of the processor's video_grid_thw / image_grid_thw


def causal_pairs(q_len: int, kv_len: int) -> int:
    """Key/query pairs of one head under the causal mask, the queries being the newest ``q_len`` of ``kv_len``."""
    return q_len * (kv_len - q_len) + q_len * (q_len + 1) // 2


def llm_forward_flops(text: TextDims, *, tokens: int, pairs: int, ffn_tokens: int, selection_vectors: int,
                      logit_rows: int, moe_tokens: int = 0) -> dict[str, int]:
    """The LLM components of one forward.

    Args (each summed over layers):
        tokens: tokens through the q/k/v/o projections.
        pairs: key/query pairs attended, summed over query heads (each costs ``q . k`` and ``p * v``).
        ffn_tokens: tokens through a dense MLP.
        moe_tokens: tokens through a routed-expert block (``TextDims.moe_layers``): its router, then
            ``experts_per_token`` experts each.
        selection_vectors: ``head_dim``-long multiply-add rows of the selection: ``q . kbar`` scores and
            vectors averaged into cube means.
        logit_rows: rows of next-token logits (not per layer).
    Returns:
        ``projections``, ``attention``, ``selection``, ``ffn``, ``lm_head`` in FLOPs.
    """
    d = text.head_dim
    return {
        "projections": MAC * tokens * text.hidden * d * 2 * (text.heads + text.kv_heads),
        "attention": MAC * pairs * 2 * d,
        "selection": MAC * selection_vectors * d,
        "ffn": MAC * (ffn_tokens * 3 * text.hidden * text.intermediate
                      + moe_tokens * text.hidden * (text.experts + text.experts_per_token * 3 * text.moe_intermediate)),
        "lm_head": MAC * logit_rows * text.hidden * text.vocab,
    }


def vision_flops(vision: VisionDims, grid: Grid) -> int:
    """The vision encoder on one image or video of ``grid`` patches: patch embedding, blocks (window and full
    attention), patch mergers (the final one and Qwen3-VL's DeepStack ones). The learned position embedding's
    interpolation (Qwen3-VL) is elementwise and not counted, like norms and activations."""
    t, h, w = grid
    patches = t * h * w
    merged = patches // vision.merge**2
    merged_width = vision.merge**2 * vision.hidden
    full = t * (h * w) ** 2  # pairs of one head: each frame group attends within itself
    pairs = vision.full_blocks * full
    if vision.depth > vision.full_blocks:
        tile = vision.window // vision.merge // vision.patch
        window = t * vision.merge**4 * _sum_of_squares(h // vision.merge, tile) * _sum_of_squares(w // vision.merge, tile)
        pairs += (vision.depth - vision.full_blocks) * window
    macs = (
        patches * vision.hidden * vision.in_channels * vision.temporal_patch * vision.patch**2
        + vision.depth * patches * (4 * vision.hidden**2 + vision.mlp_projections * vision.hidden * vision.intermediate)
        + pairs * 2 * vision.hidden  # heads * (q . k + p * v) of head_dim = hidden / heads
        + vision.mergers * merged * (merged_width**2 + merged_width * vision.out_hidden)
    )
    return MAC * macs


def _sum_of_squares(length: int, tile: int) -> int:
    """Sum of squared tile sizes when ``length`` is cut into tiles of ``tile`` (the last one shorter)."""
    return (length // tile) * tile**2 + (length % tile) ** 2


def dense_flops(dims: ModelDims, *, text_tokens: int, grids: Sequence[Grid], decode_steps: int = 0) -> SampleFlops:
    """The dense model on one sample: ``text_tokens`` text tokens and the visual tokens of ``grids``, then
    ``decode_steps`` decode forwards of one token each (generating n tokens takes n - 1 of them)."""
    text = dims.text
    seq = text_tokens + sum(t * h * w for t, h, w in grids) // dims.vision.merge**2

    moe = len(text.moe_layers)

    def forward(q_len: int, kv_len: int) -> dict[str, int]:
        return llm_forward_flops(text, tokens=text.layers * q_len, ffn_tokens=(text.layers - moe) * q_len,
                                 moe_tokens=moe * q_len,
                                 pairs=text.layers * text.heads * causal_pairs(q_len, kv_len),
                                 selection_vectors=0, logit_rows=1)

    flops = {"vision_encoder": sum(vision_flops(dims.vision, g) for g in grids), **forward(seq, seq),
             "decode": sum(sum(forward(1, seq + step).values()) for step in range(1, decode_steps + 1))}
    return SampleFlops({name: ComponentFlops(flops[name], flops[name]) for name in flops})
