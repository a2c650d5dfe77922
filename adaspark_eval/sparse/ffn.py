"""AdaS-FFN, reference implementation: the MLP runs on the top-p visual tokens of each group by L2
norm; skipped tokens receive the mean MLP output of their group's kept tokens (mean compensation).

Shapes: ``B`` batch, ``S`` positions, ``D`` hidden size, ``G`` groups, ``M`` tokens of the largest group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from adaspark_eval.sparse.layout import PAD, TokenLayout
from adaspark_eval.sparse.topp import fixed_ratio_budget, masked_softmax, select


@dataclass(frozen=True)
class FfnRule:
    """The knobs AdaS-FFN reads in one layer."""

    p: float
    fixed_ratio: float | None
    group: str  # "cube" | "grid"
    score: str  # "l1" | "softmax"
    tau: float
    compensation: str  # "mean" | "none"


def group_ids(layout: TokenLayout, group: str) -> Tensor:
    """(B, S) long: a batch-wide group id of each visual token (its cube or its grid), ``PAD`` elsewhere."""
    local = layout.unit if group == "cube" else layout.grid
    width = max(layout.num_units, 1)
    batch_base = torch.arange(local.shape[0], device=local.device)[:, None] * width
    return torch.where(layout.is_visual, local + batch_base, PAD)


def keep_tokens(residual: Tensor, groups: Tensor, rule: FfnRule) -> Tensor:
    """Which tokens go through the MLP.

    Args:
        residual: (B, S, D) residual stream entering the FFN block (before its norm).
        groups: (B, S) from ``group_ids``; tokens with ``PAD`` (text, padding) are always kept.
    Returns:
        (B, S) bool.
    """
    flat_groups = groups.flatten()
    visual = torch.nonzero(flat_groups != PAD).flatten()
    keep = torch.ones_like(flat_groups, dtype=torch.bool)
    if visual.numel() == 0:
        return keep.view_as(groups)
    importance = residual.flatten(0, 1)[visual].float().norm(dim=-1)
    gid = torch.unique(flat_groups[visual], return_inverse=True)[1]
    rows, cols = _pack(gid)
    num_groups, width = int(rows.max()) + 1, int(cols.max()) + 1
    valid = torch.zeros(num_groups, width, dtype=torch.bool, device=residual.device)
    valid[rows, cols] = True
    scores = torch.zeros(num_groups, width, device=residual.device)
    scores[rows, cols] = importance
    if rule.score == "l1":
        probs = scores / scores.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
    else:
        probs = masked_softmax(scores / rule.tau, valid)
    kept = select(probs, valid, rule.p, rule.fixed_ratio)
    keep[visual] = kept[rows, cols]
    return keep.view_as(groups)


def fixed_ratio_kept(groups: Tensor, ratio: float) -> int:
    """How many tokens ``keep_tokens`` keeps under ``fixed_ratio=ratio``, from ``groups`` (B, S) alone:
    ``topp.fixed_ratio_budget`` of each group's size and every token of no group. Reads the group sizes on the
    host (one sync)."""
    flat = groups.flatten()
    grouped = flat != PAD
    sizes = torch.unique(flat[grouped], return_counts=True)[1].cpu()
    return int(fixed_ratio_budget(sizes, ratio).sum()) + int((~grouped).sum())


def _pack(gid: Tensor) -> tuple[Tensor, Tensor]:
    """Row (group) and column (rank within group, in order of appearance) of each member: (N,), (N,)."""
    order = torch.argsort(gid, stable=True)
    sorted_gid = gid[order]
    starts = torch.searchsorted(sorted_gid, sorted_gid, right=False)
    cols = torch.empty_like(gid)
    cols[order] = torch.arange(gid.numel(), device=gid.device) - starts
    return gid, cols


def kept_indices(flat_keep: Tensor, kept: int | None) -> Tensor:
    """(N,) int64 indices of the True entries of ``flat_keep`` (S,) bool; ``kept`` is N when the caller knows it,
    which spares the host sync of counting them (``torch.nonzero``)."""
    found = torch.nonzero(flat_keep) if kept is None else torch.nonzero_static(flat_keep, size=kept)
    return found.flatten()


def sparse_ffn(mlp: Callable[[Tensor], Tensor], hidden: Tensor, keep: Tensor, groups: Tensor,
               compensation: str, kept: int | None = None) -> Tensor:
    """MLP on kept tokens; skipped tokens get their group's mean kept output (or zero; always zero for a token of
    no group).

    Args:
        mlp: the layer's MLP, (N, D) -> (N, D).
        hidden: (B, S, D) normed FFN input; keep, groups: (B, S).
        kept: ``keep.sum()`` if known (see ``kept_indices``).
    Returns:
        (B, S, D) the FFN update (the caller adds the residual).
    """
    flat = hidden.flatten(0, 1)
    flat_keep = keep.flatten()
    kept_index = kept_indices(flat_keep, kept)
    if kept_index.numel() == flat.shape[0]:  # every token kept: the dense MLP
        return mlp(hidden)
    kept_out = mlp(flat[kept_index])
    out = torch.zeros(flat.shape[0], kept_out.shape[-1], dtype=kept_out.dtype, device=kept_out.device)
    out[kept_index] = kept_out
    flat_groups = groups.flatten()
    skipped = torch.nonzero(~flat_keep & (flat_groups != PAD)).flatten()  # tokens of no group stay zero
    if compensation == "mean" and skipped.numel():
        slots = int(flat_groups.max()) + 1
        kept_groups = flat_groups[kept_index]
        is_visual = kept_groups != PAD
        sums = torch.zeros(slots, kept_out.shape[-1], dtype=torch.float32, device=out.device)
        sums.index_add_(0, kept_groups[is_visual], kept_out[is_visual].float())
        counts = torch.zeros(slots, dtype=torch.float32, device=out.device)
        counts.index_add_(0, kept_groups[is_visual], torch.ones_like(kept_groups[is_visual], dtype=torch.float32))
        means = (sums / counts.clamp_min(1)[:, None]).to(out.dtype)
        out[skipped] = means[flat_groups[skipped]]
    return out.view(*hidden.shape[:-1], -1)
