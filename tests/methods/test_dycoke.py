"""DyCoke: temporal merging of a hand-made video equals a direct transcription of the paper's algorithm; on the
tiny model the prefill equals the stock language model on the kept tokens at their positions, decode steps
read only the chosen visual tokens from layer L on, and the records equal a hand count."""

from __future__ import annotations

import math

import pytest
import torch

from adaspark_eval.config import ConfigError
from adaspark_eval.flops.analytic import causal_pairs
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.methods import make_method
from adaspark_eval.methods.dycoke import temporal_merge
from tests.methods.conftest import attached
from tests.methods.reduced import language_model_inputs, stock_on_kept


def paper_ttm(frames: list[list[list[float]]], merge: float) -> list[list[bool]]:
    """The paper's TTM in windows of 4 frames, written out: frame 1 against frame 0 and frame 3 against
    frame 2 (token by token, cosine similarity), then frame 2 against frame 0; a compared frame keeps its
    ``int((1 - merge) * n)`` least similar tokens."""
    n = len(frames[0])
    kept = [[True] * n for _ in frames]

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    def prune(frame: int, reference: int) -> None:
        similarity = [cosine(frames[frame][i], frames[reference][i]) for i in range(n)]
        least = sorted(range(n), key=lambda i: (similarity[i], -i))[: int((1 - merge) * n)]
        kept[frame] = [i in least for i in range(n)]

    for start in range(0, len(frames), 4):
        prune(start + 1, start)
        prune(start + 3, start + 2)
        prune(start + 2, start)
    return kept


def test_a_hand_made_video_matches_the_paper() -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(1, 6, 4, generator=generator)
    frames = base + 0.05 * torch.arange(8.0)[:, None, None] * torch.randn(8, 6, 4, generator=generator)
    kept, compared = temporal_merge(frames, window=4, merge=0.5, threshold=-1.0)
    assert kept.tolist() == paper_ttm(frames.tolist(), merge=0.5)
    assert kept[[0, 4]].all() and int(kept.sum()) == 2 * 6 + 6 * 3 and compared == 6 * 6
    spared, _ = temporal_merge(frames, window=4, merge=0.5, threshold=1.01)  # no similarity reaches it
    assert bool(spared.all())


def test_prefill_equals_the_stock_model_on_the_kept_tokens(prompt) -> None:
    model, inputs, _ = prompt
    with attached(model, "dycoke") as sparse, language_model_inputs(model) as seen:
        logits = model(**inputs).logits
        kept = sparse.rule.kept
    visual = inputs["input_ids"][0] == model.config.video_token_id
    assert int(kept[0, visual].sum()) == 2 * 20 + 6 * 6 + 12 + 3 * 3  # per window: f0 whole, 3 frames of int(0.3 n)
    assert torch.allclose(logits[:, -1], stock_on_kept(model, seen, kept), atol=1e-5)


def test_decode_reads_the_chosen_visual_tokens_and_flops_equal_a_hand_count(prompt) -> None:
    model, inputs, _ = prompt
    text = model.config.text_config
    heads, layers, hidden = text.num_attention_heads, text.num_hidden_layers, text.hidden_size
    settings = {"dycoke_layer": 2, "dycoke_prune": 0.5, "dycoke_refresh": 1.0}  # refresh: choose at every step
    with attached(model, "dycoke", settings) as sparse:
        model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
        records, rule = sparse.records, sparse.rule
        chosen = int(rule.chosen.sum())
    visual, kept = 97, 44 + 97  # TTM-kept visual tokens, and with the 44 text tokens
    assert chosen == int(0.5 * visual)
    for step, record in enumerate(records[1:], start=1):
        assert [int(record.attention[i].pairs) for i in range(layers)] == \
            [heads * (kept + step)] * 2 + [heads * (kept - visual + chosen + step)] * (layers - 2)
    prefill = records[0]
    assert [int(prefill.attention[i].pairs) for i in range(layers)] == [heads * causal_pairs(kept, kept)] * layers
    flops = count_sample(model.config, records, video_grid_thw=inputs["video_grid_thw"])
    ttm = 2 * 3 * hidden * (6 * 20 + 3 * 12)  # 6 compared frames of 20 tokens, 3 of 12
    assert flops.components["selection"].actual == ttm
    decode_similarity = 2 * 3 * visual  # the second step's score vector against the first's
    dense_decode = count_sample(model.config, records[:1], video_grid_thw=inputs["video_grid_thw"])
    assert flops.components["decode"].actual > decode_similarity and dense_decode.components["decode"].actual == 0
    assert int(records[2].attention[1].selection_flops) == decode_similarity


def test_settings_are_checked(prompt) -> None:
    model, _, _ = prompt
    with pytest.raises(ConfigError, match=r"dycoke_merge=1.0 is outside \[0, 1\)"):
        make_method("dycoke", {"dycoke_merge": "1"})
    with pytest.raises(ConfigError, match="dycoke_layer=4 leaves no layer to prune in this 4-layer model"):
        with attached(model, "dycoke", {"dycoke_layer": 4}):
            pass
