"""FlexPrefill: pattern choices and blocks equal a loop transcription of the paper's algorithm (both patterns),
and a run's FLOPs equal a hand count (kept pairs, the pattern search's dot products and means)."""

from __future__ import annotations

import math

import torch

from adaspark_eval.flops.counter import count_sample
from adaspark_eval.methods.flexprefill import flexprefill_blocks
from tests.methods.conftest import attached


def _softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    total = sum(math.exp(x - top) for x in xs)
    return [math.exp(x - top) / total for x in xs]


def _lines(scores: list[float], gamma: float, budget: int) -> set[int]:
    """The fewest lines by descending score reaching gamma of the total, and at least ``budget`` of them."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept, acc = set(), 0.0
    for count, i in enumerate(order):
        if count >= budget and acc >= gamma * sum(scores):
            break
        kept.add(i)
        acc += scores[i]
    return kept


def _paper_blocks(q: torch.Tensor, k: torch.Tensor, block: int, scale: float, gamma: float, tau: float,
                  budget: int) -> tuple[bool, list[list[bool]]]:
    """arXiv 2502.20766, Algorithms 1-4, for one head of ``L`` tokens, as loops: the last block's attention, the
    JS distance of the estimated and true block distributions, then the vertical-slash or query-aware blocks."""
    seq, blocks = q.shape[0], math.ceil(q.shape[0] / block)
    last = range(seq - block, seq)
    attn = {r: _softmax([float(q[r] @ k[j]) * scale for j in range(r + 1)]) for r in last}
    true = [sum(attn[r][j] for r in last for j in range(b * block, min(seq, b * block + block)) if j <= r) / block
            for b in range(blocks)]
    mean_q = sum(q[r] for r in last) / block
    mean_k = [k[b * block: b * block + block].mean(dim=0) for b in range(blocks)]
    estimated = _softmax([float(mean_q @ mean_k[b]) * scale for b in range(blocks)])
    js = math.sqrt(sum(0.5 * p * math.log(2 * p / (p + t)) + 0.5 * t * math.log(2 * t / (p + t))
                       for p, t in zip(estimated, true)))
    aware = js < tau
    vertical = [sum(attn[r][j] for r in last if j <= r) / block for j in range(seq)]
    slash = [sum(attn[r][r - o] for r in last if r - o >= 0) / block for o in range(seq)]
    v_lines = _lines(vertical, 0.0 if aware else gamma, budget)
    s_lines = _lines(slash, 0.0 if aware else gamma, budget)
    keep = [[j == 0 or j == i for j in range(blocks)] for i in range(blocks)]
    for i in range(blocks):
        for j in range(i + 1):
            for qi in range(i * block, min(seq, i * block + block)):
                for kj in range(j * block, min(seq, j * block + block)):
                    if kj <= qi and (kj in v_lines or qi - kj in s_lines):
                        keep[i][j] = True
    if aware:
        mean_qs = [q[b * block: b * block + block].mean(dim=0) for b in range(blocks)]
        probs = {(i, j): p for i in range(blocks)
                 for j, p in enumerate(_softmax([float(mean_qs[i] @ mean_k[j]) * scale for j in range(i + 1)]))}
        order = sorted(probs, key=lambda ij: (-probs[ij], ij[0] * blocks + ij[1]))
        acc = 0.0
        for i, j in order:
            if acc >= gamma * blocks:
                break
            keep[i][j] = True
            acc += probs[i, j]
    return aware, keep


def test_patterns_and_blocks_equal_the_paper_algorithm() -> None:
    generator = torch.Generator().manual_seed(3)
    q = torch.randn(1, 4, 48, 4, generator=generator).double() * 2.5
    k = torch.randn(1, 2, 48, 4, generator=generator).double() * 2.5
    real = torch.ones(1, 48, dtype=torch.bool)
    # tau 0: every head vertical-slash; 0.3: the heads' JS distances (0.36, 0.42, 0.19, 0.26) split; 10: query-aware
    for gamma, tau, budget, patterns in ((0.7, 0.0, 2, [False] * 4), (0.6, 0.3, 3, [False, False, True, True]),
                                         (0.5, 10.0, 0, [True] * 4)):
        keep, aware, _ = flexprefill_blocks(q, k, real, 6, gamma, tau, budget, 0.5)
        assert aware[0].tolist() == patterns
        assert 0 < keep.sum() < 4 * 36  # 8 blocks: 36 causal block pairs per head
        for h in range(4):
            want_aware, want_keep = _paper_blocks(q[0, h], k[0, h // 2], 6, 0.5, gamma, tau, budget)
            assert bool(aware[0, h]) == want_aware
            assert keep[0, h].tolist() == want_keep, (gamma, tau, h)


def test_flops_equal_a_hand_count(prompt) -> None:
    model, inputs, _ = prompt
    text = model.config.text_config
    heads, kv_heads = text.num_attention_heads, text.num_key_value_heads
    dim, layers = text.hidden_size // heads, text.num_hidden_layers
    seq = inputs["input_ids"].shape[1]
    settings = {"flex_gamma": 0.7, "flex_block": 16, "flex_min_budget": 8, "flex_tau": 0.2}
    with attached(model, "flexprefill", settings) as sparse:
        model(**inputs)
        flops = count_sample(model.config, sparse.records, video_grid_thw=inputs["video_grid_thw"])
        blocks, aware = sparse.rule.blocks, sparse.rule.query_aware
    assert seq == 252 and len(blocks) == layers
    # per layer: the last 16 queries against 252 keys and the mean query against 16 mean keys; 252 keys (per kv
    # head) and 16 queries (per head) averaged; with a query-aware head, 16 x 16 block-mean scores and 252 queries
    vectors = sum(heads * (16 * seq + 16) + kv_heads * seq + heads * 16
                  + (heads * (16 * 16 + seq) if bool(aware[layer].any()) else 0) for layer in range(layers))
    assert flops.components["selection"].actual == 2 * vectors * dim
    pos = torch.arange(seq)
    pairs = sum(int((keep[0][:, pos // 16][:, :, pos // 16] & (pos[None, :] <= pos[:, None])).sum())
                for keep in blocks.values())
    assert flops.components["attention"].actual == 2 * pairs * 2 * dim
    assert 0 < flops.components["attention"].reduction < 1
