"""Block-sparse pieces: the cumulative selection against a loop, block means, and attention over kept blocks
against masked attention built token by token."""

from __future__ import annotations

import math

import torch

from adaspark_eval.sparse.blocks import attend_blocks, block_means, causal_blocks, cumulative_keep, top_count


def _greedy(scores: list[float], threshold: float, candidates: list[bool], forced: list[bool]) -> list[bool]:
    """The selection as a loop: forced first, then descending scores while the kept sum is short of the target."""
    total = sum(s for s, c in zip(scores, candidates) if c)
    order = [i for i in range(len(scores)) if candidates[i] and forced[i]]
    order += sorted((i for i in range(len(scores)) if candidates[i] and not forced[i]), key=lambda i: (-scores[i], i))
    kept, acc = [False] * len(scores), 0.0
    for i in order:
        if forced[i] or acc < threshold * total:
            kept[i] = True
        acc += scores[i]
    return kept


def test_cumulative_keep_is_the_greedy_smallest_set() -> None:
    scores = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.25, 0.25, 0.25, 0.25]])
    cand = torch.tensor([[True, True, True, True], [True, True, True, False]])
    forced = torch.tensor([[True, False, False, False], [False, False, False, False]])
    # row 0: 0.1 forced, then 0.4 (0.1 < 0.6), 0.3 (0.5 < 0.6), then 0.8 >= 0.6 stops; row 1: ties by index
    kept = cumulative_keep(scores, 0.6, cand, forced).tolist()
    assert kept == [[True, True, False, True], [True, True, False, False]]
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(50, 9, generator=generator)
    cand = torch.rand(50, 9, generator=generator) > 0.2
    forced = torch.rand(50, 9, generator=generator) > 0.8
    for threshold in (0.3, 0.9):
        got = cumulative_keep(scores, threshold, cand, forced)
        want = [_greedy(s, threshold, c, f) for s, c, f in zip(scores.tolist(), cand.tolist(), forced.tolist())]
        assert got.tolist() == want
    assert torch.equal(cumulative_keep(scores, 1.0, cand, forced), cand)
    assert top_count(torch.tensor([0.2, 0.5, 0.5, 0.1]), 2).tolist() == [False, True, True, False]


def test_block_means_skip_padding() -> None:
    x = torch.arange(10.0).view(1, 1, 5, 2)
    real = torch.tensor([[False, True, True, True, True]])
    assert block_means(x, real, 2).tolist() == [[[[2.0, 3.0], [5.0, 6.0], [8.0, 9.0]]]]


def test_attention_over_kept_blocks_equals_masked_attention() -> None:
    generator = torch.Generator().manual_seed(1)
    seq, block, heads, dim = 11, 3, 4, 8
    query = torch.randn(1, heads, seq, dim, generator=generator)
    key, value = torch.randn(2, 1, 2, seq, dim, generator=generator)
    blocks = math.ceil(seq / block)
    keep = (torch.rand(1, heads, blocks, blocks, generator=generator) > 0.5) | torch.eye(blocks, dtype=torch.bool)
    real = torch.ones(1, seq, dtype=torch.bool)
    output, stats = attend_blocks(query, key, value, None, keep, block, 4, 0.3, real)
    # token mask: query i reads key j <= i when keep[block(i), block(j)]
    pos = torch.arange(seq)
    mask = keep[0][:, pos // block][:, :, pos // block] & (pos[None, :] <= pos[:, None])
    k, v = key.repeat_interleave(2, dim=1), value.repeat_interleave(2, dim=1)
    probs = torch.softmax((query @ k.transpose(-1, -2) * 0.3).masked_fill(~mask, -torch.inf), dim=-1)
    torch.testing.assert_close(output, (probs @ v).transpose(1, 2))
    assert stats.pairs.tolist() == [int(mask.sum())]
    # with transformers' boolean mask the pairs are counted token by token: the same
    causal = (pos[None, :] <= pos[:, None])[None, None]
    masked, masked_stats = attend_blocks(query, key, value, causal, keep, block, 4, 0.3, real)
    torch.testing.assert_close(masked, output)
    assert masked_stats.pairs.tolist() == [int(mask.sum())]
    kept = (keep & causal_blocks(blocks)).sum(dim=-1) / causal_blocks(blocks).sum(dim=-1)
    torch.testing.assert_close(stats.kept_fraction, kept[0].mean(dim=-1))
