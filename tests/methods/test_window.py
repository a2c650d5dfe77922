"""Window: the pure pattern, and the pairs the model attends against a token-level count built from the
video grids alone."""

from __future__ import annotations

import pytest
import torch

from adaspark_eval.config import ConfigError
from adaspark_eval.methods import make_method
from adaspark_eval.methods.window import window_mask
from adaspark_eval.sparse.layout import PAD
from tests.methods.conftest import attached

CUBE = (2, 2, 2)
GRIDS = [(8, 4, 5), (4, 3, 4)]  # LLM grids of the two videos


def test_window_mask_is_local_in_time_within_a_grid() -> None:
    # key units: slabs 0..3 of grid 0, one slab of grid 1, one text unit
    kv_slab = torch.tensor([0, 1, 2, 3, 0, PAD])
    kv_grid = torch.tensor([0, 0, 0, 0, 1, PAD])
    kv_visual = torch.tensor([True, True, True, True, True, False])
    reads = window_mask(torch.tensor([[1], [PAD]]), torch.tensor([[0], [PAD]]), kv_slab, kv_grid, kv_visual, 1)
    assert reads.tolist() == [[True, True, True, False, True, True],  # slab 1 of grid 0, window 1
                              [True] * 6]  # a text query reads everything


def token_pairs(input_ids: torch.Tensor, video_token: int, window: int) -> int:
    """Key/query pairs of one head in one layer, from each token's grid and time step alone."""
    visual = input_ids == video_token
    grid = torch.full_like(input_ids, PAD)
    slab = torch.full_like(input_ids, PAD)
    positions = torch.nonzero(visual).flatten()
    start = 0
    for g, (t, h, w) in enumerate(GRIDS):
        local = torch.arange(t * h * w)
        grid[positions[start:start + t * h * w]] = g
        slab[positions[start:start + t * h * w]] = local // (h * w) // CUBE[0]
        start += t * h * w
    seq = input_ids.shape[0]
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    local = ~visual[:, None] | ~visual[None, :] | (grid[:, None] != grid[None, :]) \
        | ((slab[:, None] - slab[None, :]).abs() <= window)
    return int((causal & local).sum())


@pytest.mark.parametrize("window", [0, 1])
def test_pairs_match_the_token_level_pattern(prompt, window: int) -> None:
    model, inputs, dense = prompt
    text = model.config.text_config
    with attached(model, "window", {"window": window}, cube=CUBE) as sparse:
        logits = model(**inputs).logits
        record = sparse.records[0]
    expected = token_pairs(inputs["input_ids"][0], model.config.video_token_id, window)
    assert [int(record.attention[i].pairs) for i in range(text.num_hidden_layers)] == \
        [expected * text.num_attention_heads] * text.num_hidden_layers
    assert all(int(record.attention[i].score_dots) == 0 for i in range(text.num_hidden_layers))  # no selection
    assert all(int(f.tokens) == int(f.dense_tokens) for f in record.ffn.values())  # dense FFN
    assert 0 < record.layer_summary(text.num_hidden_layers)[0]["kept_cube_fraction"] < 1
    assert not torch.allclose(logits, dense)


def test_negative_window_is_refused() -> None:
    with pytest.raises(ConfigError, match="window=-1 is negative"):
        make_method("window", {"window": "-1"})
