"""AdaS-Attn prefill on the kernels: selection, sparse flash attention, and the reference's statistics.

Shapes: ``B`` batch, ``H`` query heads, ``Hkv`` key/value heads, ``S`` positions, ``D`` head dim,
``U`` units, ``R`` selection rows (query slots for ``select=token``, units for ``select=cube``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from adaspark_eval.sparse.attention import AttentionRule, mean_key_count
from adaspark_eval.sparse.kernels.flash import sparse_flash
from adaspark_eval.sparse.kernels.pairs import count_pairs
from adaspark_eval.sparse.kernels.select import KernelSelection, select_tiles
from adaspark_eval.sparse.kernels.tiles import CubeTiles
from adaspark_eval.sparse.layout import TokenLayout
from adaspark_eval.sparse.state import ForwardState
from adaspark_eval.sparse.stats import AttentionStats


def choosing_units(layout: TokenLayout, text_queries: str) -> Tensor:
    """(B, U) int32, 1 for units whose queries select (``TokenLayout.choosing_units``), as the kernels take it."""
    return layout.choosing_units(text_queries).to(torch.int32)


def kernel_attention(query: Tensor, key: Tensor, value: Tensor, layout: TokenLayout, tiles: CubeTiles,
                     rule: AttentionRule, scaling: float,
                     state: ForwardState | None = None) -> tuple[Tensor, AttentionStats]:
    """AdaS-Attn of a prefill without padding.

    Args:
        query: (B, H, S, D), key / value: (B, Hkv, S, D), bf16/fp16, post-RoPE.
        tiles: ``build_tiles(layout, rule.text_keys)``.
        state: the forward in flight, whose pair tables of ``tiles`` every layer shares (None: built here).
    Returns:
        output (B, S, H, D) and the statistics (``dense_pairs`` left for the caller).
    """
    query, key, value = (x if x.stride(-1) == 1 else x.contiguous() for x in (query, key, value))
    chooses = choosing_units(layout, rule.text_queries)
    selection = select_tiles(query, key, tiles, chooses, rule.select, rule.p, rule.fixed_ratio, scaling)
    output = sparse_flash(query, key, value, tiles, selection, scaling)
    stats = selection_stats(selection, layout, rule, chooses, key.shape[1])
    stats.pairs = count_pairs(tiles, selection, state)
    return output, stats


def selection_stats(selection: KernelSelection, layout: TokenLayout, rule: AttentionRule, chooses: Tensor,
                    kv_heads: int) -> AttentionStats:
    """The reference's ``AttentionStats`` from per-row tallies (every field but ``pairs``/``dense_pairs``)."""
    heads = selection.n_cand.shape[1]
    n_cand = selection.n_cand[:, 0]  # (B, R): candidates do not depend on the head
    rows = n_cand > 0
    count = rows.sum().float()
    fraction = selection.n_kept.float() / selection.n_cand.clamp_min(1).float() * rows[:, None]
    if rule.select == "cube":
        query_means = (chooses * layout.unit_size).sum(dim=1) * heads
    else:
        query_means = torch.zeros(n_cand.shape[0], dtype=torch.long, device=n_cand.device)
    return AttentionStats(
        kept_fraction=fraction.sum(dim=(0, 2)) / count,
        entropy=(selection.entropy * rows[:, None]).sum() / heads / count,
        selecting_rows=count,
        score_dots=n_cand.sum(dim=1, dtype=torch.long) * heads,
        key_means=mean_key_count(layout, rule.text_keys) * kv_heads,
        query_means=query_means,
    )
