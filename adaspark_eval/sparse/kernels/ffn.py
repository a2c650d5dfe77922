"""AdaS-FFN on the kernels: drop-in twins of ``ffn.keep_tokens`` and ``ffn.sparse_ffn`` (same signatures).

``keep_tokens``: one program per group (cube) computes its tokens' L2 norms and the top-p set exactly as
the reference does, ties included (a member precedes another when it is larger, or equal and earlier).
``sparse_ffn``: the MLP runs on the kept tokens only; then one program per (group, feature block) copies
its kept members' outputs to their positions and writes the group's mean kept output (or zero) to the
skipped ones, the tokens of no group (text) forming one more segment that gets no mean. Nothing else
touches the skipped tokens.

Shapes: ``B`` batch, ``S`` positions, ``D`` hidden size, ``N`` visual tokens, ``G`` groups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from adaspark_eval.sparse import ffn as reference
from adaspark_eval.sparse.ffn import FfnRule
from adaspark_eval.sparse.kernels.tiles import next_power_of_two
from adaspark_eval.sparse.layout import PAD

if TYPE_CHECKING:
    from adaspark_eval.sparse.state import ForwardState

MAX_GROUP = 256  # members ranked pairwise on chip; larger groups (ffn_group=grid) use the reference rule
FEATURE_BLOCK = 256  # features per step of the norm loop
PLACE_BLOCK = (16, 512)  # members x features per step of the output placement (H200: see benchmarks/RESULTS.md)


class GroupMembers(NamedTuple):
    """Tokens listed group by group, then the tokens of no group (text, padding) as one final segment.

    Attributes:
        members: (S_total,) flat indices (into the (B * S) tokens): each group's by position, groups in id order,
            then the ungrouped tokens by position.
        offsets: (G + 2,) segment starts into ``members``: group ``g`` is ``offsets[g]:offsets[g + 1]``, the
            ungrouped tokens ``offsets[G]:offsets[G + 1]``.
        groups: ``G``; largest: the most members of a group (0 without visual tokens).
    """

    members: Tensor
    offsets: Tensor
    groups: int
    largest: int


def build_members(groups: Tensor) -> GroupMembers:
    """The ``GroupMembers`` of ``groups`` (B, S) from ``ffn.group_ids`` (``PAD`` for text and padding)."""
    flat = groups.flatten()
    grouped = flat != PAD
    visual = torch.nonzero(grouped).flatten()
    loose = torch.nonzero(~grouped).flatten()
    if visual.numel() == 0:
        return GroupMembers(loose, torch.tensor([0, loose.numel()], device=groups.device), 0, 0)
    ordered = visual[torch.argsort(flat[visual], stable=True)]
    _, sizes = torch.unique_consecutive(flat[ordered], return_counts=True)
    offsets = F.pad(torch.cumsum(sizes, 0), (1, 0))
    return GroupMembers(torch.cat([ordered, loose]), F.pad(offsets, (0, 1), value=flat.numel()), sizes.numel(),
                        int(sizes.max()))


def group_members(groups: Tensor, state: ForwardState | None) -> GroupMembers:
    """``build_members(groups)``: the forward's (``ForwardState.group_members``, built once for all its layers) when
    ``state`` is given, else built for this call."""
    return build_members(groups) if state is None else state.group_members(groups)


@triton.jit
def _keep_kernel(X, stride_row, Members, Offsets, Keep, p, ratio, tau, dim, N: tl.constexpr, BD: tl.constexpr,
                 SOFTMAX: tl.constexpr, KEEP_ALL: tl.constexpr, FIXED: tl.constexpr):
    g = tl.program_id(0)
    start = tl.load(Offsets + g)
    size = tl.load(Offsets + g + 1) - start
    idx = tl.arange(0, N)
    valid = idx < size
    rows = tl.load(Members + start + idx, mask=valid, other=0)
    squares = tl.zeros([N], dtype=tl.float32)
    for d0 in range(0, dim, BD):
        feats = d0 + tl.arange(0, BD)
        x = tl.load(X + rows[:, None] * stride_row + feats[None, :], mask=valid[:, None] & (feats < dim)[None, :],
                    other=0.0).to(tl.float32)
        squares += tl.sum(x * x, 1)
    norm = tl.sqrt(squares)
    if SOFTMAX:
        logits = tl.where(valid, norm / tau, -float("inf"))
        w = tl.where(valid, tl.exp(logits - tl.max(logits, 0)), 0.0)
    else:
        w = tl.where(valid, norm, 0.0)
    if KEEP_ALL:
        keep = valid
    else:
        before = (w[None, :] > w[:, None]) | ((w[None, :] == w[:, None]) & (idx[None, :] < idx[:, None]))
        before = before & valid[None, :]
        if FIXED:
            budget = tl.maximum(tl.ceil(size.to(tl.float32) * ratio), 1.0)
            keep = tl.sum(before.to(tl.float32), 1) < budget
        else:
            keep = tl.sum(tl.where(before, w[None, :], 0.0), 1) < p * tl.sum(w, 0)
    tl.store(Keep + rows, keep & valid, mask=valid)


def keep_tokens(residual: Tensor, groups: Tensor, rule: FfnRule, state: ForwardState | None = None) -> Tensor:
    """Which tokens go through the MLP; as ``ffn.keep_tokens``.

    Args:
        residual: (B, S, D) residual stream entering the FFN block; groups: (B, S) from ``group_ids``.
        state: the forward in flight, which builds the group lists of ``groups`` once (None: built here).
    Returns:
        (B, S) bool.
    """
    keep = torch.ones(groups.shape, dtype=torch.bool, device=groups.device)
    lists = group_members(groups, state)
    if lists.groups == 0:  # no visual token
        return keep
    if lists.largest > MAX_GROUP:
        return reference.keep_tokens(residual, groups, rule)
    flat = residual.flatten(0, 1)
    members_block = next_power_of_two(lists.largest, 16)
    _keep_kernel[(lists.groups,)](
        flat, flat.stride(0), lists.members, lists.offsets, keep.view(-1), rule.p, rule.fixed_ratio or 1.0, rule.tau,
        flat.shape[1], N=members_block, BD=max(32, min(FEATURE_BLOCK, 16384 // members_block)),
        SOFTMAX=rule.score == "softmax", KEEP_ALL=rule.fixed_ratio is None and rule.p >= 1.0,
        FIXED=rule.fixed_ratio is not None, num_warps=8,
    )
    return keep


@triton.jit
def _place_kernel(KeptOut, Rank, Members, Offsets, Out, dim, num_groups, BN: tl.constexpr, BD: tl.constexpr,
                  MEAN: tl.constexpr):
    """One program per (segment, feature block) of ``GroupMembers``: kept members get their own output row
    (``KeptOut[Rank]``), skipped ones their group's mean kept output if ``MEAN``, else zero (always zero in the
    final segment, the tokens of no group)."""
    g = tl.program_id(0)
    feats = tl.program_id(1) * BD + tl.arange(0, BD)
    in_dim = feats < dim
    start = tl.load(Offsets + g)
    end = tl.load(Offsets + g + 1)
    total = tl.zeros([BD], dtype=tl.float32)
    count = 0.0
    for m0 in range(start, end, BN):
        idx = m0 + tl.arange(0, BN)
        rows = tl.load(Members + idx, mask=idx < end, other=0).to(tl.int64)
        rank = tl.load(Rank + rows, mask=idx < end, other=-1)
        kept = rank >= 0
        x = tl.load(KeptOut + rank.to(tl.int64)[:, None] * dim + feats[None, :], mask=kept[:, None] & in_dim[None, :],
                    other=0.0)
        tl.store(Out + rows[:, None] * dim + feats[None, :], x, mask=kept[:, None] & in_dim[None, :])
        total += tl.sum(x.to(tl.float32), 0)
        count += tl.sum(kept.to(tl.float32), 0)
    compensated = MEAN and g < num_groups
    fill = tl.where(compensated, total / tl.maximum(count, 1.0), 0.0).to(Out.dtype.element_ty)
    for m0 in range(start, end, BN):
        idx = m0 + tl.arange(0, BN)
        rows = tl.load(Members + idx, mask=idx < end, other=0).to(tl.int64)
        skipped = (tl.load(Rank + rows, mask=idx < end, other=0) < 0) & (idx < end)
        tl.store(Out + rows[:, None] * dim + feats[None, :], fill[None, :] + tl.zeros([BN, BD], Out.dtype.element_ty),
                 mask=skipped[:, None] & in_dim[None, :])


def sparse_ffn(mlp: Callable[[Tensor], Tensor], hidden: Tensor, keep: Tensor, groups: Tensor,
               compensation: str, kept: int | None = None, state: ForwardState | None = None) -> Tensor:
    """MLP on kept tokens; skipped tokens get their group's mean kept output (or zero); as ``ffn.sparse_ffn``.

    Args:
        mlp: the layer's MLP, (N, D) -> (N, D); hidden: (B, S, D) normed FFN input; keep, groups: (B, S).
        kept: ``keep.sum()`` if known (``ffn.kept_indices``).
        state: as in ``keep_tokens``.
    Returns:
        (B, S, D) the FFN update.
    """
    flat = hidden.flatten(0, 1)
    flat_keep = keep.flatten()
    kept_index = reference.kept_indices(flat_keep, kept)
    if kept_index.numel() == flat.shape[0]:  # every token kept: the dense MLP
        return mlp(hidden)
    kept_out = mlp(flat.index_select(0, kept_index)).contiguous()
    out = torch.empty(flat.shape[0], kept_out.shape[-1], dtype=kept_out.dtype, device=kept_out.device)
    lists = group_members(groups, state)
    rank = torch.where(flat_keep, torch.cumsum(flat_keep, 0, dtype=torch.int32) - 1, -1).to(torch.int32)
    dim = out.shape[1]
    members_step, features_step = PLACE_BLOCK
    grid = (lists.groups + 1, triton.cdiv(dim, features_step))
    _place_kernel[grid](kept_out, rank, lists.members, lists.offsets, out, dim, lists.groups, BN=members_step,
                        BD=features_step, MEAN=compensation == "mean")
    return out.view(*hidden.shape[:-1], -1)
