"""The tie margins and list decoding of ``benchmarks/selection_agreement.py`` (its comparisons need a GPU)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[2]))
from benchmarks import selection_agreement  # noqa: E402 - a script beside the package, not in it
from benchmarks.kernel_bench.common import rule_of  # noqa: E402


def test_fixed_ratio_margin_is_the_relative_score_gap_at_the_boundary():
    scores = torch.tensor([4.0, 3.0, 2.0 + 1e-9, 2.0, 1.0], dtype=torch.float64)
    rule = rule_of("token", 1.0, 0.5)
    assert selection_agreement.margin(scores, 3, 3, rule) == pytest.approx(5e-10, rel=1e-3)
    assert selection_agreement.margin(scores, 2, 2, rule) == pytest.approx((3.0 - 2.0 - 1e-9) / (2.0 + 1e-9))


def test_top_p_margin_is_small_only_when_the_kept_mass_or_the_boundary_probabilities_tie():
    probs = torch.tensor([0.5, 0.4, 0.06, 0.04], dtype=torch.float64)
    scores = probs.log()
    assert selection_agreement.margin(scores, 2, 3, rule_of("token", 0.9, None)) < 1e-12  # mass 0.9 exactly
    assert selection_agreement.margin(scores, 2, 3, rule_of("token", 0.8, None)) == pytest.approx(0.1)
    tied = torch.tensor([0.5, 0.3, 0.1 + 1e-12, 0.1], dtype=torch.float64).log()
    assert selection_agreement.margin(tied, 3, 4, rule_of("token", 0.85, None)) < 1e-9


def test_listed_columns_reads_full_columns_from_the_front_and_the_others_from_the_back():
    lists = torch.tensor([[[[3, 5, -7, -7, -7, 6, 2, 0]]]], dtype=torch.int32)
    selection = selection_agreement.KernelSelection(
        lists=lists, counts=torch.tensor([[[5]]]), full_counts=torch.tensor([[[2]]]), bits=None,
        n_cand=lists, n_kept=lists, entropy=lists.float())
    listed = selection_agreement.listed_columns(selection, 8)
    assert listed[0, 0, 0].nonzero().flatten().tolist() == [0, 2, 3, 5, 6]


def test_means64_averages_each_units_tokens_in_float64():
    from adaspark_eval.sparse.layout import build_layout

    ids = torch.tensor([[1, 1] + [9] * 16 + [1]])
    layout = build_layout(ids, video_token_id=9, image_token_id=8, cube=(1, 2, 2),
                          video_grid_thw=torch.tensor([[2, 4, 8]]))
    x = torch.randn(1, 2, layout.seq_len, 4, dtype=torch.float64)
    means = selection_agreement.means64(x, layout)
    for unit in range(layout.num_units):
        tokens = layout.unit[0] == unit
        assert torch.allclose(means[:, unit], x[0][:, tokens].mean(dim=1))
