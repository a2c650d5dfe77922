"""AdaS-FFN planning: which tokens a layer's sparse MLP computes, decided before the MLP runs.

The runtime plans each layer from the residual stream entering its FFN block (a pre-hook on the
post-attention norm) and hands the plan to the layer's ``SparseMLP`` through the ``ForwardState``.
Shapes: ``B`` batch, ``S`` positions of this forward, ``D`` hidden size.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from adaspark_eval.sparse.ffn import FfnRule
from adaspark_eval.sparse.kernels import dispatch
from adaspark_eval.sparse.layout import PAD, TokenLayout
from adaspark_eval.sparse.state import ForwardState
from adaspark_eval.sparse.stats import FfnStats


class FfnPlan(NamedTuple):
    """What a layer's sparse MLP runs, decided from the residual stream before the layer's FFN norm: the
    kept-token count then travels to the host while the GPU still runs the norm, and the MLP starts without
    waiting for the GPU to drain (a host sync per layer otherwise leaves it idle). Under a fixed ratio the
    count follows from the group sizes (``ffn.fixed_ratio_kept``), and no layer waits at all.

    Attributes:
        keep: (B, S) bool tokens the MLP computes; groups: (B, S) their groups (``ffn.group_ids``).
        compensation: what skipped tokens get (``mean`` or ``none``).
        count: () int64 ``keep.sum()``, on the host once ``ready`` has passed (``ready`` None: already there).
    """

    keep: Tensor
    groups: Tensor
    compensation: str
    count: Tensor
    ready: torch.cuda.Event | None

    def kept(self) -> int:
        """Kept tokens (waits for the count's copy only, not for the GPU's later work)."""
        if self.ready is not None:
            self.ready.synchronize()
        return int(self.count)


def count_ahead(keep: Tensor) -> tuple[Tensor, torch.cuda.Event | None]:
    """``keep.sum()`` copied to pinned host memory without blocking, and the event that marks its arrival
    (None on the CPU)."""
    count = keep.sum()
    if count.device.type != "cuda":
        return count, None
    host = torch.empty((), dtype=count.dtype, pin_memory=True)
    host.copy_(count, non_blocking=True)
    ready = torch.cuda.Event()
    ready.record()
    return host, ready


def plan_ffn(residual: Tensor, layout: TokenLayout, rule: FfnRule | None, pruned: Tensor | None,
             state: ForwardState, backend: str) -> tuple[FfnPlan | None, FfnStats]:
    """The kept tokens of one layer's FFN and their statistics.

    Args:
        residual: (B, S, D) the residual stream entering the layer's FFN block (before its norm).
        layout: the layout in flight on ``residual``'s device (covering at least the ``S`` newest positions).
        rule: the layer's AdaS-FFN rule; None where AdaS-FFN is off for it.
        pruned: (B, S) bool tokens a peer method keeps (``LayerRule.ffn_keep``; the others get no FFN update),
            or None.
        state: the forward in flight (its group ids and fixed-ratio counts are made once for all layers).
        backend: the ``backend`` knob (``dispatch.ffn_functions``).
    Returns:
        the plan (None: the dense MLP) and the layer's ``FfnStats``.
    """
    layout_now = _query_slice(layout, residual.shape[1])
    valid = layout_now.unit != PAD
    visual = layout_now.is_visual
    if rule is None:
        keep = torch.ones_like(visual) if pruned is None else pruned
    else:
        groups = state.group_ids(layout_now, rule.group)
        keep = dispatch.ffn_functions(backend, residual, state).keep_tokens(residual, groups, rule)
    stats = FfnStats(
        tokens=(keep & valid).sum(dim=1),
        dense_tokens=valid.sum(dim=1),
        visual_kept=(keep & visual).sum(dim=1),
        visual=visual.sum(dim=1),
    )
    if rule is None and pruned is None:
        return None, stats
    if rule is None:  # tokens a method pruned: no FFN update
        groups, compensation = state.group_ids(layout_now, "cube"), "none"
    else:
        compensation = rule.compensation
    if rule is not None and rule.fixed_ratio is not None:  # the count follows from the groups: no sync
        count = torch.tensor(state.fixed_ratio_kept(groups, rule.fixed_ratio))
        return FfnPlan(keep, groups, compensation, count, None), stats
    return FfnPlan(keep, groups, compensation, *count_ahead(keep)), stats


def _query_slice(layout: TokenLayout, q_len: int) -> TokenLayout:
    """The layout restricted to the newest ``q_len`` positions (unit tables are kept whole)."""
    if q_len == layout.seq_len:
        return layout
    return TokenLayout(
        unit=layout.unit[:, -q_len:], is_visual=layout.is_visual[:, -q_len:], grid=layout.grid[:, -q_len:],
        unit_first=layout.unit_first, unit_last=layout.unit_last, unit_is_visual=layout.unit_is_visual,
        unit_size=layout.unit_size, cube_volume=layout.cube_volume,
    )
