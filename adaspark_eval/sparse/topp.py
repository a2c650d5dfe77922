"""Selection rules shared by AdaS-Attn and AdaS-FFN: top-p (nucleus) and fixed ratio.

Both work on the last dimension of a tensor of probabilities (or scores) with a ``valid`` mask of the
entries that may be chosen; invalid entries are never kept.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def top_p_mask(probs: Tensor, p: float, valid: Tensor) -> Tensor:
    """Smallest set of highest-probability valid entries whose sum reaches ``p``.

    Args:
        probs: (..., N) non-negative, summing to 1 over the valid entries of each row.
        p: threshold in (0, 1]; ``p = 1`` keeps every valid entry (also those of probability 0).
        valid: (..., N) bool.
    Returns:
        (..., N) bool. Ties are broken by the lower index; a row with a valid entry keeps at least one.
    """
    if p >= 1.0:
        return valid.clone()
    masked = torch.where(valid, probs, torch.full_like(probs, -1.0))
    sorted_probs, order = torch.sort(masked, dim=-1, descending=True, stable=True)
    before = torch.cumsum(sorted_probs.clamp_min(0), dim=-1) - sorted_probs.clamp_min(0)
    keep_sorted = before < p
    keep = torch.zeros_like(valid).scatter(-1, order, keep_sorted)
    return keep & valid


def fixed_ratio_mask(scores: Tensor, ratio: float, valid: Tensor) -> Tensor:
    """The ``ceil(ratio * n_valid)`` highest-scoring valid entries of each row (at least one).

    Args:
        scores: (..., N) any real scores (probabilities or logits).
        ratio: fraction in (0, 1].
        valid: (..., N) bool.
    Returns:
        (..., N) bool; ties by the lower index.
    """
    masked = torch.where(valid, scores, torch.full_like(scores, -math.inf))
    order = torch.sort(masked, dim=-1, descending=True, stable=True)[1]
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order))
    return (rank < fixed_ratio_budget(valid.sum(dim=-1, keepdim=True), ratio)) & valid


def fixed_ratio_budget(counts: Tensor, ratio: float) -> Tensor:
    """(...) int64 entries a fixed ``ratio`` keeps of ``counts`` (...) int: ``max(1, ceil(counts * ratio))``, the
    product rounded in float32 (as the kernels round)."""
    return torch.clamp(torch.ceil(counts * ratio).long(), min=1)


def select(probs: Tensor, valid: Tensor, p: float, fixed_ratio: float | None) -> Tensor:
    """Top-p by default; fixed ratio when ``fixed_ratio`` is set. Shapes as ``top_p_mask``."""
    if fixed_ratio is not None:
        return fixed_ratio_mask(probs, fixed_ratio, valid)
    return top_p_mask(probs, p, valid)


def masked_softmax(logits: Tensor, valid: Tensor) -> Tensor:
    """Softmax over the valid entries of the last dim; rows with none give all zeros. Shapes (..., N)."""
    masked = torch.where(valid, logits, torch.full_like(logits, -math.inf))
    probs = torch.softmax(masked.float(), dim=-1)
    return torch.nan_to_num(probs, nan=0.0)


def entropy(probs: Tensor) -> Tensor:
    """Shannon entropy in nats of each row of ``probs`` (..., N) -> (...)."""
    return -(probs * torch.log(probs.clamp_min(1e-30))).sum(dim=-1)
