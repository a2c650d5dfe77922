"""AdaS-FFN kernels against the reference, under Triton's CPU interpreter: kept tokens and outputs."""

import pytest
import torch

from adaspark_eval.sparse import ffn as reference
from adaspark_eval.sparse.layout import build_layout
from adaspark_eval.sparse.state import ForwardState
from tests.sparse.interpreted import INTERPRETED, needs_interpreter

if INTERPRETED:
    from adaspark_eval.sparse.kernels import ffn as kernels

TEXT, VIDEO, HIDDEN = 1, 9, 48
# LLM grid 4 x 4 x 8 with cube 2 x 2 x 4 (8 cubes of 16 tokens) between text
IDS = [TEXT] * 5 + [VIDEO] * 128 + [TEXT] * 7


def _setup(dtype=torch.bfloat16):
    layout = build_layout(torch.tensor([IDS]), video_token_id=VIDEO, image_token_id=8, cube=(2, 2, 4),
                          video_grid_thw=torch.tensor([[4, 8, 16]]))
    gen = torch.Generator().manual_seed(0)
    residual, hidden = (torch.randn(1, len(IDS), HIDDEN, generator=gen).to(dtype) for _ in range(2))
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(HIDDEN, 2 * HIDDEN), torch.nn.SiLU(),
                              torch.nn.Linear(2 * HIDDEN, HIDDEN)).to(dtype)
    return layout, residual, hidden, mlp


def _rule(**changes) -> reference.FfnRule:
    return reference.FfnRule(**{"p": 0.5, "fixed_ratio": None, "group": "cube", "score": "l1", "tau": 0.5,
                                "compensation": "mean", **changes})


@needs_interpreter
@pytest.mark.parametrize("changes", [{}, {"score": "softmax"}, {"fixed_ratio": 0.3}, {"group": "grid", "p": 0.7},
                                     {"p": 1.0}])
def test_kept_tokens_match_reference(changes):
    layout, residual, _, _ = _setup()
    rule = _rule(**changes)
    groups = reference.group_ids(layout, rule.group)
    keep = kernels.keep_tokens(residual, groups, rule)
    assert torch.equal(keep, reference.keep_tokens(residual, groups, rule))
    if rule.fixed_ratio is not None:
        assert reference.fixed_ratio_kept(groups, rule.fixed_ratio) == int(keep.sum())


@needs_interpreter
@pytest.mark.parametrize("compensation", ["mean", "none"])
def test_sparse_ffn_matches_reference_and_skips_work(compensation):
    layout, residual, hidden, mlp = _setup()
    rule = _rule(compensation=compensation)
    groups = reference.group_ids(layout, rule.group)
    keep = reference.keep_tokens(residual, groups, rule)
    rows = []

    def counted(x: torch.Tensor) -> torch.Tensor:
        rows.append(x.shape[0])
        return mlp(x)

    out = kernels.sparse_ffn(counted, hidden, keep, groups, compensation)
    want = reference.sparse_ffn(mlp, hidden, keep, groups, compensation)
    assert rows == [int(keep.sum())] and rows[0] < len(IDS)
    assert torch.allclose(out.float(), want.float(), atol=2e-2, rtol=0)
    counted_ahead = kernels.sparse_ffn(counted, hidden, keep, groups, compensation, kept=rows[0])  # no host sync
    assert rows[1] == rows[0] and torch.equal(counted_ahead, out)


@needs_interpreter
def test_group_lists_are_built_once_per_groups_tensor_and_text_only_keeps_all():
    layout, residual, _, _ = _setup()
    state = ForwardState(layout)
    cubes, grids = state.group_ids(layout, "cube"), state.group_ids(layout, "grid")
    assert state.group_ids(layout, "cube") is cubes
    first = kernels.group_members(cubes, state)
    assert kernels.group_members(cubes, state) is first  # the layers of a forward share one groups tensor
    assert kernels.group_members(cubes, ForwardState(layout)) is not first  # the next forward builds its own
    assert kernels.group_members(cubes, None) is not first
    by_grid = kernels.group_members(grids, state)  # another tensor: built afresh, not the cached lists
    seq = len(IDS)
    assert by_grid is not first and by_grid.offsets.tolist() == [0, 128, seq] and by_grid.groups == 1
    assert first.groups == 8 and first.offsets.numel() == 10 and first.largest == 16
    assert sorted(first.members.tolist()) == list(range(seq))  # every token once, the text in the last segment
    text = torch.full_like(cubes, reference.PAD)
    assert kernels.keep_tokens(residual, text, _rule()).all()


@needs_interpreter
@pytest.mark.parametrize("compensation", ["mean", "none"])
def test_skipped_tokens_of_no_group_get_zero_as_in_the_reference(compensation):
    layout, _, hidden, mlp = _setup()
    groups = reference.group_ids(layout, "cube")
    keep = torch.ones(1, len(IDS), dtype=torch.bool)
    keep[0, [0, 3, 20, 21, 139]] = False  # text tokens (no group) and visual ones a method pruned
    out = kernels.sparse_ffn(mlp, hidden, keep, groups, compensation)
    want = reference.sparse_ffn(mlp, hidden, keep, groups, compensation)
    assert torch.all(out[0, [0, 3, 139]] == 0)
    assert torch.allclose(out.float(), want.float(), atol=2e-2, rtol=0)
