import torch

from adaspark_eval.sparse.topp import entropy, fixed_ratio_mask, masked_softmax, top_p_mask


def _keep(probs, p, valid=None):
    probs = torch.tensor(probs)
    valid = torch.ones_like(probs, dtype=torch.bool) if valid is None else torch.tensor(valid)
    return top_p_mask(probs, p, valid).tolist()


def test_smallest_set_reaching_p():
    assert _keep([0.1, 0.5, 0.3, 0.1], 0.5) == [False, True, False, False]
    assert _keep([0.1, 0.5, 0.3, 0.1], 0.6) == [False, True, True, False]
    assert _keep([0.1, 0.5, 0.3, 0.1], 0.8) == [False, True, True, False]  # 0.5 + 0.3 reaches 0.8
    assert _keep([0.1, 0.5, 0.3, 0.1], 0.81) == [True, True, True, False]  # ties: the lower index first


def test_ties_prefer_lower_index():
    assert _keep([0.25, 0.25, 0.25, 0.25], 0.5) == [True, True, False, False]


def test_p_one_keeps_every_valid_entry_even_of_zero_probability():
    assert _keep([0.0, 1.0, 0.0], 1.0) == [True, True, True]
    assert _keep([0.0, 1.0, 0.0], 1.0, [True, True, False]) == [True, True, False]


def test_one_hot_keeps_one():
    assert _keep([0.0, 0.0, 1.0, 0.0], 0.99) == [False, False, True, False]


def test_invalid_entries_never_kept_and_empty_rows_keep_nothing():
    assert _keep([0.6, 0.4, 0.0], 0.9, [True, True, False]) == [True, True, False]
    assert _keep([0.0, 0.0], 0.5, [False, False]) == [False, False]


def test_fixed_ratio_keeps_the_fraction():
    scores = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.9, 0.05, 0.05, 0.0]])
    valid = torch.ones_like(scores, dtype=torch.bool)
    assert fixed_ratio_mask(scores, 0.5, valid).tolist() == [[False, True, False, True], [True, True, False, False]]
    assert fixed_ratio_mask(scores, 0.01, valid).sum(dim=1).tolist() == [1, 1]  # at least one
    valid[0, 1] = False
    assert fixed_ratio_mask(scores, 0.5, valid)[0].tolist() == [False, False, True, True]  # ceil(0.5 * 3) = 2


def test_masked_softmax_and_entropy():
    probs = masked_softmax(torch.zeros(2, 4), torch.tensor([[True, True, False, False], [False] * 4]))
    assert torch.allclose(probs[0], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert probs[1].tolist() == [0.0] * 4
    assert torch.allclose(entropy(probs), torch.tensor([torch.log(torch.tensor(2.0)), 0.0]))
