"""XAttention: block scores and choices equal a loop transcription of the paper's algorithm, a hand-made case
keeps the blocks it should, and a run's FLOPs equal a hand count (kept pairs, scoring dot products)."""

from __future__ import annotations

import math

import torch

from adaspark_eval.flops.counter import count_sample
from adaspark_eval.methods.xattention import antidiagonal_scores, threshold_blocks
from tests.methods.conftest import attached


def _paper_blocks(q: torch.Tensor, k: torch.Tensor, block: int, stride: int, scale: float,
                  threshold: float) -> tuple[list[list[float]], list[list[bool]]]:
    """arXiv 2503.16428, Algorithm 1, for one head of a sequence of whole blocks, written as loops: the strided
    antidiagonal sums of each (stride x stride) tile, a causal softmax over each query group's row, block sums,
    then per query block the first and diagonal blocks and the rest by descending score to the threshold."""
    groups, per_block, blocks = q.shape[0] // stride, block // stride, q.shape[0] // block
    probs = [[0.0] * groups for _ in range(groups)]
    for r in range(groups):
        sums = [sum(float(q[r * stride + stride - 1 - t] @ k[c * stride + t]) for t in range(stride)) * scale / stride
                for c in range(r + 1)]
        top = max(sums)
        total = sum(math.exp(s - top) for s in sums)
        for c in range(r + 1):
            probs[r][c] = math.exp(sums[c] - top) / total
    scores = [[sum(probs[r][c] for r in range(i * per_block, (i + 1) * per_block)
                   for c in range(j * per_block, (j + 1) * per_block)) for j in range(blocks)] for i in range(blocks)]
    kept = []
    for i, row in enumerate(scores):
        chosen = {0, i}
        acc = sum(row[j] for j in chosen)
        for j in sorted((j for j in range(i + 1) if j not in chosen), key=lambda j: (-row[j], j)):
            if acc >= threshold * sum(row[: i + 1]):
                break
            chosen.add(j)
            acc += row[j]
        kept.append([j in chosen for j in range(blocks)])
    return scores, kept


def test_scores_and_choices_equal_the_paper_algorithm() -> None:
    generator = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, 2, 32, 4, generator=generator).double() * 2
    real = torch.ones(1, 32, dtype=torch.bool)
    scores, dots = antidiagonal_scores(q, k[:, :1], real, block=8, stride=4, scaling=0.5, chunk_blocks=3)
    for threshold in (0.5, 0.8):
        keep = threshold_blocks(scores, threshold)
        for h in range(2):
            want_scores, want_keep = _paper_blocks(q[0, h], k[0, 0], 8, 4, 0.5, threshold)
            torch.testing.assert_close(scores[0, h].double(), torch.tensor(want_scores, dtype=torch.double))
            assert keep[0, h].tolist() == want_keep
    # 4 blocks of 2 groups, scored 3 blocks (6 query groups) at a time against the key groups up to the chunk's
    # end: 6 x 6, then 2 x 8 dot products of 4 head-dim rows, for 2 heads
    assert dots.tolist() == [2 * 4 * (6 * 6 + 2 * 8)]


def test_a_hand_made_case_keeps_the_block_the_queries_look_at() -> None:
    q = torch.zeros(1, 1, 16, 2)
    k = torch.zeros(1, 1, 16, 2)
    q[..., 0] = 1.0
    k[:, :, 4:8, 0] = 3.0  # key block 1 answers every query
    real = torch.ones(1, 16, dtype=torch.bool)
    scores, _ = antidiagonal_scores(q, k, real, block=4, stride=2, scaling=1.0, chunk_blocks=4)
    keep = threshold_blocks(scores, 0.5)[0, 0]
    # each query block: its first and own blocks, plus block 1 (the mass) and nothing else
    assert keep.tolist() == [[True, False, False, False], [True, True, False, False],
                             [True, True, True, False], [True, True, False, True]]


def test_flops_equal_a_hand_count(prompt) -> None:
    model, inputs, _ = prompt
    text = model.config.text_config
    heads, dim = text.num_attention_heads, text.hidden_size // text.num_attention_heads
    seq = inputs["input_ids"].shape[1]
    settings = {"xattn_threshold": 0.6, "xattn_block": 16, "xattn_stride": 4}
    with attached(model, "xattention", settings, query_chunk=64) as sparse:
        model(**inputs)
        flops = count_sample(model.config, sparse.records, video_grid_thw=inputs["video_grid_thw"])
        blocks = sparse.rule.blocks
    assert seq == 252 and len(blocks) == text.num_hidden_layers
    # 16 blocks of 4 groups, scored 4 blocks (16 groups) at a time against the groups up to the chunk's end
    dots = heads * 4 * sum(16 * cols for cols in (16, 32, 48, 64))
    assert flops.components["selection"].actual == 2 * text.num_hidden_layers * dots * dim
    pos = torch.arange(seq)
    pairs = sum(int((keep[0][:, pos // 16][:, :, pos // 16] & (pos[None, :] <= pos[:, None])).sum())
                for keep in blocks.values())
    assert flops.components["attention"].actual == 2 * pairs * 2 * dim
    assert 0 < flops.components["attention"].reduction < 1
