"""VisionZip: the kept and merged tokens of a hand-made frame group equal a direct transcription of the
paper's algorithm; on the tiny model the kept tokens follow the encoder's scores frame group by frame group,
the result equals the stock language model run on the kept tokens alone at their original positions, and
the records count a dense model on the kept tokens plus the scoring, equal to a hand count."""

from __future__ import annotations

import math

import pytest
import torch

from adaspark_eval.config import ConfigError
from adaspark_eval.flops.analytic import causal_pairs
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.methods import make_method
from adaspark_eval.methods.visionzip import group_counts, merge_embeddings, select_group
from tests.methods.conftest import attached
from tests.methods.reduced import language_model_inputs, stock_on_kept


def paper_visionzip(scores: list[float], keys: list[list[float]], dominant: int, contextual: int
                    ) -> tuple[list[int], dict[int, list[int]]]:
    """The paper's algorithm (Sec. 3.2), written out: the ``dominant`` most attended tokens; the rest, in
    order, give targets at a uniform step; every other token joins its most similar target (cosine of keys).
    Returns the kept tokens (sorted) and each target's members."""
    n = len(scores)
    dominant_tokens = sorted(range(n), key=lambda i: (-scores[i], i))[:dominant]
    rest = [i for i in range(n) if i not in dominant_tokens]
    step = max(1, len(rest) // contextual)
    targets = rest[::step][:contextual]

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    members = {t: [t] for t in targets}
    for i in rest:
        if i not in targets:
            similarity = [cosine(keys[i], keys[t]) for t in targets]
            members[targets[similarity.index(max(similarity))]].append(i)
    return sorted(dominant_tokens + targets), members


def test_a_hand_made_group_matches_the_paper() -> None:
    scores = [0.05, 0.30, 0.02, 0.01, 0.20, 0.03, 0.25, 0.04, 0.06, 0.04]
    keys = [[1, 0], [0, 1], [1, 0.1], [0.9, 0.2], [0, 1], [-1, 0.2], [1, 1], [0.1, 1], [-1, -0.1], [0.2, 0.9]]
    kept, owner = select_group(torch.tensor(scores), torch.tensor(keys), dominant=3, contextual=2)
    expected_kept, members = paper_visionzip(scores, keys, dominant=3, contextual=2)
    assert torch.nonzero(kept).flatten().tolist() == expected_kept == [0, 1, 4, 5, 6]
    for target, group in members.items():
        assert sorted(torch.nonzero(owner == target).flatten().tolist()) == sorted(group)
    embeds = torch.arange(20.0).reshape(10, 2)
    merged = merge_embeddings(embeds, owner)
    for target, group in members.items():
        assert torch.allclose(merged[target], embeds[group].mean(dim=0))
    assert torch.equal(merged[[1, 4, 6]], embeds[[1, 4, 6]])  # dominant tokens stay as they are


def test_group_counts_are_the_papers_at_576_tokens() -> None:
    assert [group_counts(576, keep / 576, 0.15625) for keep in (192, 128, 64)] == [(162, 30), (108, 20), (54, 10)]
    assert group_counts(20, 0.333, 0.15625) == (6, 1) and group_counts(12, 0.333, 0.15625) == (3, 1)


def test_kept_tokens_follow_the_encoder_scores_per_frame_group(prompt) -> None:
    model, inputs, _ = prompt
    with attached(model, "visionzip") as sparse:
        model(**inputs)
        kept, call = sparse.rule.kept[0], sparse.rule.probe.calls[-1]
    visual = inputs["input_ids"][0] == model.config.video_token_id
    start, expected = 0, []
    for t, h, w in (inputs["video_grid_thw"] // torch.tensor([1, 2, 2])).tolist():
        for _ in range(t):
            rows = slice(start, start + h * w)
            expected.append(select_group(call.scores[rows], call.metric[rows], *group_counts(h * w, 0.333, 0.15625))[0])
            start += h * w
    assert torch.equal(kept[visual], torch.cat(expected)) and bool(kept[~visual].all())
    assert int(kept[visual].sum()) == 8 * 7 + 4 * 4  # 7 of each 4x5 frame group, 4 of each 3x4


def test_equals_the_stock_model_on_the_kept_tokens_at_their_positions(prompt) -> None:
    model, inputs, _ = prompt
    with attached(model, "visionzip", {"visionzip_keep": 0.4}) as sparse, language_model_inputs(model) as seen:
        logits = model(**inputs).logits
        kept = sparse.rule.kept
    assert torch.allclose(logits[:, -1], stock_on_kept(model, seen, kept), atol=1e-5)


def test_flops_equal_a_hand_count(prompt) -> None:
    model, inputs, _ = prompt
    text = model.config.text_config
    heads, layers = text.num_attention_heads, text.num_hidden_layers
    with attached(model, "visionzip") as sparse:
        model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)
        records = sparse.rule.runtime.records
    kept = 44 + 8 * 7 + 4 * 4  # 44 text tokens, the visual tokens kept
    prefill = records[0]
    assert [int(prefill.attention[i].pairs) for i in range(layers)] == [heads * causal_pairs(kept, kept)] * layers
    assert [int(prefill.ffn[i].tokens) for i in range(layers)] == [kept] * layers
    assert int(records[1].attention[layers - 1].pairs) == heads * (kept + 1)
    # scores: 2 heads x 16 dims x patches^2 per frame group (8 groups of 8x10 patches, 4 of 6x8); similarity: the
    # 14 (9) tokens left of a 20 (12) token group, normalised and 13 (8) of them against 1 target, 16 dims each
    scores = 2 * 16 * (8 * 80**2 + 4 * 48**2)
    similarity = 8 * (14 * 16 + 13 * 1 * 16) + 4 * (9 * 16 + 8 * 1 * 16)
    flops = count_sample(model.config, records, video_grid_thw=inputs["video_grid_thw"])
    assert flops.components["selection"].actual == 2 * (scores + similarity)
    assert 0 < flops.llm_prefill.reduction < 1


def test_settings_are_checked(prompt) -> None:
    with pytest.raises(ConfigError, match=r"visionzip_keep=0.0 is outside \(0, 1\]"):
        make_method("visionzip", {"visionzip_keep": "0"})
    with pytest.raises(ConfigError, match=r"visionzip_contextual=1.0 is outside \[0, 1\)"):
        make_method("visionzip", {"visionzip_contextual": "1"})
