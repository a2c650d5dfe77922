"""AdaS-Attn, reference implementation: cube selection by ``q . mean_key`` and top-p, then masked SDPA.

Shapes: ``B`` batch, ``H`` query heads, ``Hkv`` key/value heads, ``Sq`` queries, ``Sk`` keys, ``U`` units,
``D`` head dim. Query position ``i`` of a forward is ``Sk - Sq + i`` (queries are the newest tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from adaspark_eval.sparse.layout import PAD, TokenLayout
from adaspark_eval.sparse.stats import AttentionStats
from adaspark_eval.sparse.topp import entropy, masked_softmax, select


@dataclass(frozen=True)
class AttentionRule:
    """The knobs AdaS-Attn reads in one layer."""

    p: float
    fixed_ratio: float | None
    select: str  # "token" | "cube"
    text_queries: str  # "dense" | "sparse"
    text_keys: str  # "all" | "sparse"
    decode: bool  # this forward is a decode step
    sparse_decode: bool


@dataclass
class Selection:
    """Kept units of every query, in query chunks.

    ``keep[c]``: (B, H, c_len, U) bool, True where the query may read the unit (kept candidates, the own
    unit, units that are never candidates); ``pruned``: some candidate was dropped anywhere.
    """

    keep: list[Tensor]
    chunk: int
    pruned: bool
    stats: AttentionStats


def unit_means(x: Tensor, unit: Tensor, num_units: int) -> Tensor:
    """Mean of ``x`` over the tokens of each unit.

    Args:
        x: (B, H, S, D) keys or queries.
        unit: (B, S) unit id per position, ``PAD`` for none.
    Returns:
        (B, H, U, D) float32; zeros for units with no token here.
    """
    bsz, heads, seq, dim = x.shape
    index = torch.where(unit == PAD, num_units, unit)
    sums = torch.zeros(bsz, heads, num_units + 1, dim, dtype=torch.float32, device=x.device)
    sums.scatter_add_(2, index[:, None, :, None].expand(bsz, heads, seq, dim), x.float())
    counts = torch.zeros(bsz, num_units + 1, dtype=torch.float32, device=x.device)
    counts.scatter_add_(1, index, torch.ones_like(index, dtype=torch.float32))
    return (sums / counts.clamp_min(1)[:, None, :, None])[:, :, :num_units]


def candidate_units(positions: Tensor, own: Tensor, layout: TokenLayout, text_keys: str) -> Tensor:
    """Units a query may choose from: they hold a key at or before the query, and are not its own.

    Args:
        positions: (Q,) query positions; own: (B, Q) the query's own unit (``PAD`` for none).
    Returns:
        (B, Q, U) bool.
    """
    units = torch.arange(layout.num_units, device=positions.device)
    visible = layout.unit_first[:, None, :] <= positions[None, :, None]
    return visible & layout.selectable_units(text_keys)[:, None, :] & (units[None, None, :] != own[..., None])


def selecting_queries(layout: TokenLayout, positions: Tensor, rule: AttentionRule) -> Tensor:
    """(B, Q) bool: queries at ``positions`` that select units (the others attend densely)."""
    if rule.decode:
        return layout.is_text[:, positions] & rule.sparse_decode
    return layout.choosing_tokens(rule.text_queries)[:, positions]


def select_units(query: Tensor, key: Tensor, layout: TokenLayout, rule: AttentionRule, scaling: float,
                 chunk: int) -> Selection:
    """Kept units of each query head.

    Args:
        query: (B, H, Sq, D) post-RoPE; key: (B, Hkv, Sk, D) post-RoPE (cache included).
        layout: covers the ``Sk`` key positions.
        chunk: queries processed at a time (bounds memory at B * H * chunk * U).
    """
    bsz, heads, q_len, _ = query.shape
    kv_heads, k_len = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    positions = torch.arange(k_len - q_len, k_len, device=query.device)
    kbar = unit_means(key, layout.unit, layout.num_units).repeat_interleave(groups, dim=1)
    cube_level = rule.select == "cube" and not rule.decode
    if cube_level:
        unit_keep, tallies = select_per_unit(query, kbar, layout, rule, scaling, positions)
    else:
        tallies = SelectionTallies(bsz, heads, query.device)
    keeps: list[Tensor] = []
    pruned = False
    for start in range(0, q_len, chunk):
        pos = positions[start : start + chunk]
        own = layout.unit[:, pos]
        if cube_level:
            index = torch.where(own == PAD, 0, own)[:, None, :, None].expand(-1, heads, -1, layout.num_units)
            keep = torch.gather(unit_keep, 2, index) | (own == PAD)[:, None, :, None]
        else:
            cand = candidate_units(pos, own, layout, rule.text_keys) & selecting_queries(layout, pos, rule)[..., None]
            scores = torch.einsum("bhqd,bhud->bhqu", query[:, :, start : start + chunk].float(), kbar) * scaling
            probs = masked_softmax(scores, cand[:, None])
            kept = select(probs, cand[:, None].expand_as(probs), rule.p, rule.fixed_ratio)
            keep = kept | ~cand[:, None]
            pruned = pruned or bool((cand[:, None] & ~kept).any())
            tallies.add(cand, kept, probs)
        keeps.append(keep)
    if cube_level:
        pruned = tallies.pruned
    stats = tallies.finish(key_means=mean_key_count(layout, rule.text_keys) * kv_heads)
    return Selection(keep=keeps, chunk=chunk, pruned=pruned, stats=stats)


def select_per_unit(query: Tensor, kbar: Tensor, layout: TokenLayout, rule: AttentionRule, scaling: float,
                    positions: Tensor) -> tuple[Tensor, SelectionTallies]:
    """``select=cube``: one selection per choosing unit from its mean query.

    Args:
        query: (B, H, Sq, D) post-RoPE; kbar: (B, H, U, D) unit means of the keys (``unit_means``), per query head.
        positions: (Sq,) positions of the queries.
    Returns:
        keep (B, H, U, U) bool, True where unit ``u``'s queries may read unit ``v`` (kept candidates and every
        non-candidate), and the tallies of the selection.
    """
    bsz, heads = query.shape[:2]
    q_units = layout.unit[:, positions]
    qbar = unit_means(query, q_units, layout.num_units)
    units = torch.arange(layout.num_units, device=query.device)
    chooses = layout.choosing_units(rule.text_queries)
    cand = (
        (layout.unit_first[:, None, :] <= layout.unit_last[:, :, None])
        & layout.selectable_units(rule.text_keys)[:, None, :]
        & (units[:, None] != units[None, :])[None]
        & chooses[:, :, None]
    )
    scores = torch.einsum("bhud,bhvd->bhuv", qbar, kbar) * scaling
    probs = masked_softmax(scores, cand[:, None])
    kept = select(probs, cand[:, None].expand_as(probs), rule.p, rule.fixed_ratio)
    tallies = SelectionTallies(bsz, heads, query.device)
    tallies.add(cand, kept, probs)
    tallies.query_means = (chooses * layout.unit_size).sum(dim=1) * heads
    tallies.pruned = bool((cand[:, None] & ~kept).any())
    return kept | ~cand[:, None], tallies


def mean_key_count(layout: TokenLayout, text_keys: str) -> Tensor:
    """(B,) long: key vectors averaged into unit means (the tokens of ``selectable_units``), per key/value head."""
    return (layout.unit_size * layout.selectable_units(text_keys)).sum(dim=1)


class SelectionTallies:
    """Running sums behind ``AttentionStats`` over query chunks (``B`` samples, ``H`` query heads)."""

    def __init__(self, bsz: int, heads: int, device: torch.device) -> None:
        self.kept = torch.zeros(heads, device=device)
        self.rows = torch.zeros((), device=device)
        self.entropy = torch.zeros((), device=device)
        self.score_dots = torch.zeros(bsz, dtype=torch.long, device=device)
        self.query_means = torch.zeros(bsz, dtype=torch.long, device=device)
        self.pruned = False
        self.heads = heads

    def add(self, cand: Tensor, kept: Tensor, probs: Tensor) -> None:
        """cand: (B, Q, U) candidates; kept: (B, H, Q, U) kept candidates; probs: (B, H, Q, U)."""
        n_cand = cand.sum(dim=-1)  # (B, Q)
        rows = n_cand > 0
        frac = kept.sum(dim=-1).float() / n_cand.clamp_min(1)[:, None].float()  # (B, H, Q)
        self.kept += (frac * rows[:, None]).sum(dim=(0, 2))
        self.rows += rows.sum()
        self.entropy += (entropy(probs) * rows[:, None]).sum() / self.heads
        self.score_dots += n_cand.sum(dim=1) * self.heads

    def finish(self, key_means: Tensor) -> AttentionStats:
        return AttentionStats(
            kept_fraction=self.kept / self.rows,
            entropy=self.entropy / self.rows,
            selecting_rows=self.rows,
            score_dots=self.score_dots,
            key_means=key_means,
            query_means=self.query_means,
        )


def allowed_keys(base: Tensor, keep: Tensor, key_unit: Tensor) -> Tensor:
    """Token-level mask from a unit-level one.

    Args:
        base: (B, 1, Q, Sk) bool, the original (causal and padding) mask.
        keep: (B, H, Q, U) bool, units each query may read.
        key_unit: (B, Sk) unit of each key, ``PAD`` for padding.
    Returns:
        (B, H, Q, Sk) bool.
    """
    bsz, heads, q_len, num_units = keep.shape
    padded = torch.cat([keep, keep.new_ones(bsz, heads, q_len, 1)], dim=-1)
    index = torch.where(key_unit == PAD, num_units, key_unit)[:, None, None, :].expand(bsz, heads, q_len, -1)
    return base & torch.gather(padded, 3, index)


def base_rows(attention_mask: Tensor | None, rows: slice, q_len: int, k_len: int, bsz: int,
              device: torch.device) -> Tensor:
    """(B, 1, Q, Sk) bool rows ``rows`` of the original mask (transformers' bool or additive float mask,
    or None for plain causal)."""
    if attention_mask is None:
        q_pos = torch.arange(k_len - q_len, k_len, device=device)[rows]
        causal = torch.arange(k_len, device=device)[None, :] <= q_pos[:, None]
        return causal[None, None].expand(bsz, 1, -1, -1)
    mask = attention_mask[:, :, rows, -k_len:]
    mask = mask if mask.dtype == torch.bool else mask == 0
    return mask.expand(bsz, 1, -1, -1)


def dense_pairs(attention_mask: Tensor | None, q_len: int, k_len: int, bsz: int, heads: int,
                device: torch.device) -> Tensor:
    """(B,) key/query pairs dense attention computes under the original mask, over all heads."""
    if attention_mask is None:
        per_head = q_len * (k_len - q_len) + q_len * (q_len + 1) // 2
        return torch.full((bsz,), per_head * heads, dtype=torch.long, device=device)
    mask = attention_mask if attention_mask.dtype == torch.bool else attention_mask == 0
    return mask[..., -k_len:].expand(bsz, 1, q_len, k_len).sum(dim=(1, 2, 3)) * heads


def sparse_attention(query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
                     selection: Selection, key_unit: Tensor, scaling: float) -> tuple[Tensor, Tensor]:
    """Attention of each query over its allowed keys only.

    Args:
        query: (B, H, Sq, D); key, value: (B, Hkv, Sk, D); attention_mask: transformers' mask or None.
    Returns:
        output (B, Sq, H, D) in the query dtype, and pairs (B,) key/query pairs computed over all heads.
    """
    outputs = []
    pairs = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    for index, keep in enumerate(selection.keep):
        start = index * selection.chunk
        rows = slice(start, start + keep.shape[2])
        base = base_rows(attention_mask, rows, query.shape[2], key.shape[2], query.shape[0], query.device)
        mask = allowed_keys(base, keep, key_unit)
        pairs += mask.sum(dim=(1, 2, 3))
        outputs.append(
            F.scaled_dot_product_attention(query[:, :, rows], key, value, attn_mask=mask, scale=scaling,
                                           enable_gqa=key.shape[1] != query.shape[1])
        )
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), pairs
