import pytest
import torch

from adaspark_eval.sparse.ffn import FfnRule, fixed_ratio_kept, group_ids, keep_tokens, sparse_ffn
from adaspark_eval.sparse.layout import build_layout

T, V = 1, 9


def _toy():
    """One text token, 5 video tokens in two cubes (3 + 2 tokens), one text token."""
    layout = build_layout(torch.tensor([[T, V, V, V, V, V, T]]), video_token_id=V, image_token_id=8, cube=(1, 1, 3),
                          video_grid_thw=torch.tensor([[1, 2, 10]]))
    gen = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(7, 8, generator=gen), dim=-1)
    norms = torch.tensor([5.0, 1.0, 2.0, 1.0, 3.0, 1.0, 7.0])
    x = (directions * norms[:, None])[None]  # (1, 7, 8)
    mlp = torch.nn.Linear(8, 8)
    torch.nn.init.normal_(mlp.weight, generator=gen)
    return layout, x, mlp


def _rule(**changes):
    return FfnRule(**{"p": 0.7, "fixed_ratio": None, "group": "cube", "score": "l1", "tau": 1.0,
                      "compensation": "mean", **changes})


def test_top_p_by_l2_norm_within_each_cube():
    layout, x, _ = _toy()
    keep = keep_tokens(x, group_ids(layout, "cube"), _rule())
    # cube A norms (1, 2, 1) -> probs (.25, .5, .25): keeps the 2, then the lower-index 1 (sum .75 >= .7)
    # cube B norms (3, 1) -> probs (.75, .25): keeps the 3; text always kept
    assert keep[0].tolist() == [True, True, True, False, True, False, True]


def test_mean_compensation_against_hand_computation():
    layout, x, mlp = _toy()
    groups = group_ids(layout, "cube")
    keep = keep_tokens(x, groups, _rule())
    with torch.no_grad():
        out = sparse_ffn(mlp, x, keep, groups, "mean")[0]
        full = mlp(x[0])
    for kept in (0, 1, 2, 4, 6):
        assert torch.allclose(out[kept], full[kept])
    assert torch.allclose(out[3], (full[1] + full[2]) / 2, atol=1e-6)
    assert torch.allclose(out[5], full[4], atol=1e-6)
    with torch.no_grad():
        plain = sparse_ffn(mlp, x, keep, groups, "none")[0]
        counted = sparse_ffn(mlp, x, keep, groups, "mean", kept=int(keep.sum()))[0]
    assert plain[3].abs().sum() == 0 and plain[5].abs().sum() == 0
    assert torch.equal(counted, out)  # the kept count given: same rows, same result


def test_grid_groups_softmax_score_and_fixed_ratio():
    layout, x, _ = _toy()
    grid_keep = keep_tokens(x, group_ids(layout, "grid"), _rule(p=0.5))
    # one group of norms (1, 2, 1, 3, 1): l1 probs (.125, .25, .125, .375, .125): 3 then 2 reach .625 >= .5
    assert grid_keep[0].tolist() == [True, False, True, False, True, False, True]
    sharp = keep_tokens(x, group_ids(layout, "grid"), _rule(p=0.5, score="softmax", tau=0.1))
    assert sharp[0, 1:6].tolist() == [False, False, False, True, False]
    ratio = keep_tokens(x, group_ids(layout, "cube"), _rule(fixed_ratio=0.5))
    assert ratio[0].tolist() == [True, True, True, False, True, False, True]  # ceil(1.5)=2 of A, 1 of B


def test_p_one_keeps_every_token():
    layout, x, _ = _toy()
    assert keep_tokens(x, group_ids(layout, "cube"), _rule(p=1.0)).all()


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("grid, cube", [([3, 6, 14], (2, 2, 3)), ([1, 4, 10], (1, 2, 5))])
def test_fixed_ratio_count_from_group_sizes_equals_the_tokens_kept(ratio, grid, cube):
    """Edge cubes of 1-12 tokens, tied norms (broken by position), and a single cube of 10 tokens."""
    tokens = grid[0] * grid[1] // 2 * grid[2] // 2
    layout = build_layout(torch.tensor([[T] * 3 + [V] * tokens + [T] * 2]), video_token_id=V, image_token_id=8,
                          cube=cube, video_grid_thw=torch.tensor([grid]))
    x = torch.randn(1, tokens + 5, 8, generator=torch.Generator().manual_seed(1))
    x[0, 4:8] = x[0, 3]  # equal norms within a group: ties broken by position
    groups = group_ids(layout, "cube")
    keep = keep_tokens(x, groups, _rule(fixed_ratio=ratio))
    assert fixed_ratio_kept(groups, ratio) == int(keep.sum())
