"""``window``: fixed local attention, the rigid pattern the paper argues against.

A *slab* is ``cube_t`` consecutive temporal groups of one grid (the cubes that share a time step). A
visual query reads the cubes of its own grid whose slab is within ``window`` slabs of its own (at any
spatial position), every text token, and every other grid (another video or an image of the prompt is
not a neighbour in time of this one). Text queries read everything; FFN is dense. The kept units
are the per-query tensor the reference AdaS-Attn consumes, so ``sparse_attention`` and its pair
counting run unchanged; the pattern costs no selection FLOPs (it depends on positions only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.methods.base import Method, dense_knobs
from adaspark_eval.sparse.attention import Selection, candidate_units, sparse_attention
from adaspark_eval.sparse.layout import PAD, build_layout
from adaspark_eval.sparse.stats import AttentionStats

if TYPE_CHECKING:
    from adaspark_eval.sparse.runtime import SparseRuntime

WHOLE = 2**20  # a cube side no grid reaches (and whose cube volume fits int64): whole-slab cubes


def window_mask(q_slab: Tensor, q_grid: Tensor, kv_slab: Tensor, kv_grid: Tensor, kv_visual: Tensor,
                window: int) -> Tensor:
    """Whether a query unit may read a key unit; elementwise on broadcastable tensors (attention-gym's
    ``mask_mod`` over units), e.g. queries (B, Q, 1) against keys (B, 1, U) -> (B, Q, U) bool.

    Args:
        q_slab, q_grid: the query's own unit: its slab and its grid (``PAD`` for a text query).
        kv_slab, kv_grid, kv_visual: the key unit's slab, grid and whether it is visual.
        window: slabs read on each side of the query's own.
    """
    return ~kv_visual | (kv_grid != q_grid) | ((kv_slab - q_slab).abs() <= window)


class WindowRule:
    """The window pattern on ``runtime``'s layout; ``slab``, ``grid``: (B, U) slab and grid of each unit of
    the prefill in flight (``PAD`` for text units)."""

    def __init__(self, runtime: SparseRuntime, window: int) -> None:
        self.runtime = runtime
        self.window = window
        self.slab: Tensor | None = None
        self.grid: Tensor | None = None

    def prefill(self, inputs: dict[str, Any]) -> None:
        """Slab and grid of each unit: each unit's first token in a layout of whole-slab cubes."""
        runtime, layout = self.runtime, self.runtime.layout
        slabs = build_layout(inputs["input_ids"], video_token_id=runtime.video_token_id,
                             image_token_id=runtime.image_token_id, cube=(runtime.config.cube[0], WHOLE, WHOLE),
                             spatial_merge_size=runtime.spatial_merge_size,
                             video_grid_thw=inputs.get("video_grid_thw"), image_grid_thw=inputs.get("image_grid_thw"),
                             attention_mask=inputs.get("attention_mask"))
        first = layout.unit_first.clamp_max(layout.seq_len - 1)
        self.slab = slabs.unit.gather(1, first)
        self.grid = layout.grid.gather(1, first)

    def attend(self, layer: int, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
               scaling: float) -> tuple[Tensor, AttentionStats] | None:
        """Sparse attention over the window (None at decode, and where the window drops nothing)."""
        runtime, layout = self.runtime, self.runtime.layout_on(query.device)
        if runtime.records[-1].phase == "decode":
            return None
        q_len, k_len, heads = query.shape[2], key.shape[2], query.shape[1]
        positions = torch.arange(k_len - q_len, k_len, device=query.device)
        own = layout.unit[:, positions]
        index = torch.where(own == PAD, 0, own)
        slab, grid = self.slab.to(query.device), self.grid.to(query.device)
        q_grid = torch.where(layout.is_visual[:, positions], grid.gather(1, index), PAD)
        reads = window_mask(slab.gather(1, index)[..., None], q_grid[..., None], slab[:, None], grid[:, None],
                            layout.unit_is_visual[:, None], self.window)
        cand = candidate_units(positions, own, layout, "all") & layout.is_visual[:, positions, None]
        if not bool((cand & ~reads).any()):
            return None
        n_cand = cand.sum(dim=-1)
        rows = n_cand > 0
        kept = ((cand & reads).sum(dim=-1) / n_cand.clamp_min(1))[rows].mean()
        zeros = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        stats = AttentionStats(kept_fraction=kept.expand(heads), selecting_rows=rows.sum(), score_dots=zeros,
                               key_means=zeros, query_means=zeros)
        chunk = runtime.config.query_chunk
        keep = [reads[:, None, start:start + chunk].expand(-1, heads, -1, -1) for start in range(0, q_len, chunk)]
        output, stats.pairs = sparse_attention(query, key, value, attention_mask, Selection(keep, chunk, True, stats),
                                               layout.unit, scaling)
        return output, stats

    def ffn_keep(self, layer: int, q_len: int) -> None:
        return None


@dataclass(frozen=True)
class Window(Method):
    """``window`` slabs of ``cube_t`` temporal groups on each side of the query's own (the ``cube`` knob
    sets ``cube_t``)."""

    name = "window"
    summary = "local attention: cubes within --window slabs (cube_t time steps) of the query's, plus text"
    window: int = 1

    def validate(self) -> None:
        if self.window < 0:
            raise ConfigError(f"window={self.window} is negative: pass slabs on each side >= 0, e.g. window=1")

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        return dense_knobs(knobs, cube=knobs.cube)

    def rule(self, runtime: SparseRuntime) -> WindowRule:
        return WindowRule(runtime, self.window)

    def describe(self, config: AdaSparkConfig) -> dict[str, Any]:
        return {"cube": list(config.cube), **self.settings()}
