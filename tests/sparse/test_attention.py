import math

import pytest
import torch

from adaspark_eval.sparse.attention import AttentionRule, select_units, sparse_attention, unit_means
from adaspark_eval.sparse.layout import build_layout

T, V = 1, 9
IDS = [T, T] + [V] * 12 + [T, T]  # units: text 0, cubes 1-4, text 5
HEADS, KV_HEADS, DIM = 2, 1, 8


def _setup(seed=0):
    layout = build_layout(torch.tensor([IDS]), video_token_id=V, image_token_id=8, cube=(1, 2, 2),
                          video_grid_thw=torch.tensor([[2, 4, 6]]))
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(1, HEADS, len(IDS), DIM, generator=gen)
    k = torch.randn(1, KV_HEADS, len(IDS), DIM, generator=gen)
    v = torch.randn(1, KV_HEADS, len(IDS), DIM, generator=gen)
    return layout, q, k, v


def _rule(**changes):
    return AttentionRule(**{"p": 0.3, "fixed_ratio": None, "select": "token", "text_queries": "dense",
                            "text_keys": "all", "decode": False, "sparse_decode": False, **changes})


def _keep(rule, chunk=5, seed=0):
    layout, q, k, _ = _setup(seed)
    selection = select_units(q, k, layout, rule, DIM**-0.5, chunk)
    return torch.cat(selection.keep, dim=2)[0], layout, selection  # (H, S, U)


def test_unit_means():
    x = torch.arange(6, dtype=torch.float32).view(1, 1, 6, 1)
    means = unit_means(x, torch.tensor([[0, 0, 1, -1, 1, 1]]), 3)
    assert means.flatten().tolist() == pytest.approx([0.5, 11 / 3, 0.0])


def test_visual_query_keeps_own_cube_text_and_a_top_p_set_of_earlier_cubes():
    keep, layout, _ = _keep(_rule(p=0.01))
    for query in range(2, 14):  # visual queries
        own = int(layout.unit[0, query])
        visible = [u for u in (1, 2, 3, 4) if u != own and int(layout.unit_first[0, u]) <= query]
        for head in range(HEADS):
            row = keep[head, query]
            assert row[own] and row[0] and row[5]  # own cube and all text units
            assert sum(bool(row[u]) for u in visible) == min(1, len(visible))  # p tiny: one earlier cube


def test_candidates_are_scored_by_q_dot_mean_key():
    layout, q, k, _ = _setup()
    keep, _, _ = _keep(_rule(p=0.01))
    kbar = unit_means(k, layout.unit, layout.num_units)[0, 0]
    query = 13  # sees cubes 1..4; own cube is 4
    for head in range(HEADS):
        scores = {u: float(q[0, head, query] @ kbar[u]) for u in (1, 2, 3)}
        best = max(scores, key=scores.get)
        assert [u for u in (1, 2, 3) if keep[head, query, u]] == [best]


def test_text_queries_dense_by_default_and_sparse_on_request():
    dense_keep, _, _ = _keep(_rule(p=0.01))
    assert dense_keep[:, 14:].all()  # text queries after the video read every unit
    sparse_keep, _, _ = _keep(_rule(p=0.01, text_queries="sparse"))
    assert not sparse_keep[:, 15, 1:5].all()  # some cube dropped for the last text query
    assert sparse_keep[:, 15, 5].all()  # its own (text) unit stays


def test_text_keys_sparse_makes_text_units_candidates():
    keep, _, selection = _keep(_rule(p=0.01, text_keys="sparse"))
    assert not keep[:, 13, 0].all()  # the leading text unit can be dropped by a visual query
    kept_all, _, _ = _keep(_rule(p=0.01))
    assert kept_all[:, 2:14, 0].all()


def test_p_one_prunes_nothing_and_stats_count_candidates():
    _, layout, selection = _keep(_rule(p=1.0))
    assert not selection.pruned
    assert torch.allclose(selection.stats.kept_fraction, torch.ones(HEADS))
    # candidates per visual query = visible earlier cubes other than its own
    candidates = sum(
        sum(1 for u in (1, 2, 3, 4) if u != int(layout.unit[0, i]) and int(layout.unit_first[0, u]) <= i)
        for i in range(2, 14)
    )
    assert int(selection.stats.score_dots[0]) == candidates * HEADS
    assert int(selection.stats.key_means[0]) == 12 * KV_HEADS


def test_cube_select_shares_one_choice_per_cube():
    keep, layout, _ = _keep(_rule(p=0.01, select="cube"))
    for unit in (1, 2, 3, 4):
        rows = keep[:, layout.unit[0] == unit]  # (H, tokens of the cube, U)
        assert (rows == rows[:, :1]).all()


def test_sparse_attention_equals_masked_softmax_by_hand():
    layout, q, k, v = _setup()
    rule = _rule(p=0.2)
    selection = select_units(q, k, layout, rule, DIM**-0.5, chunk=4)
    out, pairs = sparse_attention(q, k, v, None, selection, layout.unit, DIM**-0.5)
    keep = torch.cat(selection.keep, dim=2)[0]
    seq = len(IDS)
    expected = torch.empty(seq, HEADS, DIM)
    count = 0
    for head in range(HEADS):
        for i in range(seq):
            allowed = [j for j in range(seq) if j <= i and keep[head, i, layout.unit[0, j]]]
            count += len(allowed)
            logits = torch.stack([q[0, head, i] @ k[0, 0, j] / math.sqrt(DIM) for j in allowed])
            weights = torch.softmax(logits, dim=0)
            expected[i, head] = sum(w * v[0, 0, j] for w, j in zip(weights, allowed))
    assert torch.allclose(out[0], expected, atol=1e-5)
    assert int(pairs[0]) == count


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_query_chunking_does_not_change_the_selection(chunk):
    reference, _, _ = _keep(_rule(p=0.5), chunk=16)
    chunked, _, _ = _keep(_rule(p=0.5), chunk=chunk)
    assert torch.equal(reference, chunked)
