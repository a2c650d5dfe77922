"""AdaS-FFN on the kernels: drop-in twins of ``ffn.keep_tokens`` and ``ffn.sparse_ffn`` (same signatures).

``keep_tokens``: one program per group (cube) computes its tokens' L2 norms and the top-p set exactly as
the reference does, ties included (a member precedes another when it is larger, or equal and earlier).
``sparse_ffn``: the MLP runs on the kept tokens only; their outputs are copied to their positions and
one program per (group, feature block) writes its group's mean kept output (or zero) to the skipped
ones. Nothing else touches the skipped tokens.

Shapes: ``B`` batch, ``S`` positions, ``D`` hidden size, ``N`` visual tokens, ``G`` groups.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from adaspark_eval.sparse import ffn as reference
from adaspark_eval.sparse.ffn import FfnRule
from adaspark_eval.sparse.kernels.tiles import next_power_of_two
from adaspark_eval.sparse.layout import PAD

MAX_GROUP = 256  # members ranked pairwise on chip; larger groups (ffn_group=grid) use the reference rule
FEATURE_BLOCK = 256  # features per step of the norm loop
FILL_BLOCK = (16, 512)  # members x features per step of the compensation (0.32 -> 0.21 ms at 64k vs (32, 256), H200)


def build_members(groups: Tensor) -> tuple[Tensor, Tensor, int]:
    """Visual tokens listed group by group.

    Args:
        groups: (B, S) from ``ffn.group_ids`` (``PAD`` for text and padding).
    Returns:
        members (N,) flat indices sorted by group then position, offsets (G + 1,) into ``members``, and the
        largest group size (0 without visual tokens).
    """
    flat = groups.flatten()
    visual = torch.nonzero(flat != PAD).flatten()
    if visual.numel() == 0:
        return visual, torch.zeros(1, dtype=torch.long, device=groups.device), 0
    members = visual[torch.argsort(flat[visual], stable=True)]
    _, sizes = torch.unique_consecutive(flat[members], return_counts=True)
    return members, F.pad(torch.cumsum(sizes, 0), (1, 0)), int(sizes.max())


_last_members: list[tuple[Tensor, tuple[Tensor, Tensor, int]]] = []


def group_members(groups: Tensor) -> tuple[Tensor, Tensor, int]:
    """``build_members`` of ``groups``, built once per groups tensor: the layers of a forward share one
    (``AdaSpark.group_ids``), so the sort and its host sync happen once per forward, not twice per layer."""
    if _last_members and _last_members[0][0] is groups:
        return _last_members[0][1]
    members = build_members(groups)
    _last_members[:] = [(groups, members)]
    return members


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


def keep_tokens(residual: Tensor, groups: Tensor, rule: FfnRule) -> Tensor:
    """Which tokens go through the MLP; as ``ffn.keep_tokens``.

    Args:
        residual: (B, S, D) residual stream entering the FFN block; groups: (B, S) from ``group_ids``.
    Returns:
        (B, S) bool.
    """
    keep = torch.ones(groups.shape, dtype=torch.bool, device=groups.device)
    members, offsets, largest = group_members(groups)
    if offsets.numel() == 1:  # no visual token
        return keep
    if largest > MAX_GROUP:
        return reference.keep_tokens(residual, groups, rule)
    flat = residual.flatten(0, 1)
    members_block = next_power_of_two(largest, 16)
    _keep_kernel[(offsets.numel() - 1,)](
        flat, flat.stride(0), members, offsets, keep.view(-1), rule.p, rule.fixed_ratio or 1.0, rule.tau,
        flat.shape[1], N=members_block, BD=max(32, min(FEATURE_BLOCK, 8192 // members_block)),
        SOFTMAX=rule.score == "softmax", KEEP_ALL=rule.fixed_ratio is None and rule.p >= 1.0,
        FIXED=rule.fixed_ratio is not None, num_warps=8,
    )
    return keep


@triton.jit
def _compensate_kernel(KeptOut, Rank, Members, Offsets, Out, dim, BN: tl.constexpr, BD: tl.constexpr,
                       MEAN: tl.constexpr):
    g = tl.program_id(0)
    feats = tl.program_id(1) * BD + tl.arange(0, BD)
    in_dim = feats < dim
    start = tl.load(Offsets + g)
    end = tl.load(Offsets + g + 1)
    total = tl.zeros([BD], dtype=tl.float32)
    count = 0.0
    if MEAN:
        for m0 in range(start, end, BN):
            idx = m0 + tl.arange(0, BN)
            rank = tl.load(Rank + tl.load(Members + idx, mask=idx < end, other=0), mask=idx < end, other=-1)
            kept = rank >= 0
            x = tl.load(KeptOut + rank.to(tl.int64)[:, None] * dim + feats[None, :],
                        mask=kept[:, None] & in_dim[None, :], other=0.0)
            total += tl.sum(x.to(tl.float32), 0)
            count += tl.sum(kept.to(tl.float32), 0)
    fill = (total / tl.maximum(count, 1.0)).to(Out.dtype.element_ty)
    for m0 in range(start, end, BN):
        idx = m0 + tl.arange(0, BN)
        rows = tl.load(Members + idx, mask=idx < end, other=0)
        skipped = (tl.load(Rank + rows, mask=idx < end, other=0) < 0) & (idx < end)
        tl.store(Out + rows.to(tl.int64)[:, None] * dim + feats[None, :],
                 fill[None, :] + tl.zeros([BN, BD], Out.dtype.element_ty), mask=skipped[:, None] & in_dim[None, :])


def sparse_ffn(mlp: Callable[[Tensor], Tensor], hidden: Tensor, keep: Tensor, groups: Tensor,
               compensation: str) -> Tensor:
    """MLP on kept tokens; skipped tokens get their group's mean kept output (or zero); as ``ffn.sparse_ffn``.

    Args:
        mlp: the layer's MLP, (N, D) -> (N, D); hidden: (B, S, D) normed FFN input; keep, groups: (B, S).
    Returns:
        (B, S, D) the FFN update.
    """
    flat = hidden.flatten(0, 1)
    flat_keep = keep.flatten()
    kept_index = torch.nonzero(flat_keep).flatten()
    if kept_index.numel() == flat.shape[0]:  # every token kept: the dense MLP
        return mlp(hidden)
    kept_out = mlp(flat[kept_index]).contiguous()
    out = torch.empty(flat.shape[0], kept_out.shape[-1], dtype=kept_out.dtype, device=kept_out.device)
    out.index_copy_(0, kept_index, kept_out)
    members, offsets, _ = group_members(groups)
    rank = torch.where(flat_keep, torch.cumsum(flat_keep, 0, dtype=torch.int32) - 1, -1).to(torch.int32)
    dim = out.shape[1]
    members_step, features_step = FILL_BLOCK
    grid = (offsets.numel() - 1, triton.cdiv(dim, features_step))
    _compensate_kernel[grid](kept_out, rank, members, offsets, out, dim, BN=members_step, BD=features_step,
                             MEAN=compensation == "mean")
    return out.view(*hidden.shape[:-1], -1)
