"""FastV: the kept tokens are the most attended (checked against transformers' eager attention
weights), pruned tokens are no keys from layer K + 1 on, and the records count a dense model on the
kept tokens after layer K."""

from __future__ import annotations

import math

import pytest
import torch

from adaspark_eval.config import ConfigError
from adaspark_eval.flops.analytic import causal_pairs
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.methods import make_method
from adaspark_eval.sparse.topp import fixed_ratio_mask
from tests.methods.conftest import attached

LAYER, KEEP = 1, 0.3


def eager_received(model, inputs, layer: int, visual: torch.Tensor) -> torch.Tensor:
    """(S,) attention received in ``layer`` from the text after the last visual token, mean over heads and
    those queries, from transformers' eager attention weights."""
    text_config = model.config.text_config
    text_config._attn_implementation = "eager"
    try:
        with torch.no_grad():
            weights = model(**inputs, output_attentions=True).attentions[layer][0]  # (H, S, S)
    finally:
        text_config._attn_implementation = "sdpa"
    last_visual = int(torch.nonzero(visual).max())
    return weights[:, last_visual + 1:].mean(dim=(0, 1))


def test_keeps_the_most_attended_visual_tokens(prompt) -> None:
    model, inputs, _ = prompt
    visual = torch.isin(inputs["input_ids"][0], torch.tensor([model.config.video_token_id]))
    expected = ~visual | fixed_ratio_mask(eager_received(model, inputs, LAYER, visual), KEEP, visual)
    with attached(model, "fastv", {"fastv_layer": LAYER, "fastv_keep": KEEP}) as sparse:
        model(**inputs)
        kept = sparse.rule.kept[0]
    assert int((kept & visual).sum()) == math.ceil(KEEP * int(visual.sum()))
    assert torch.equal(kept, expected)


def test_records_count_a_dense_model_on_the_kept_tokens(prompt) -> None:
    model, inputs, _ = prompt
    text = model.config.text_config
    heads, layers = text.num_attention_heads, text.num_hidden_layers
    with attached(model, "fastv", {"fastv_layer": LAYER, "fastv_keep": KEEP}) as sparse:
        model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
        records = sparse.records
        kept = int(sparse.rule.kept.sum())
    seq = inputs["input_ids"].shape[1]
    prefill = records[0]
    assert [int(prefill.attention[i].pairs) for i in range(layers)] == \
        [heads * causal_pairs(seq, seq)] * (LAYER + 1) + [heads * causal_pairs(kept, kept)] * (layers - LAYER - 1)
    assert [int(prefill.ffn[i].tokens) for i in range(layers)] == [seq] * (LAYER + 1) + [kept] * (layers - LAYER - 1)
    assert int(prefill.attention[LAYER + 1].tokens) == kept
    assert int(prefill.attention[LAYER].score_dots) > 0 and prefill.attention[LAYER + 1].score_dots is None
    for step, record in enumerate(records[1:], start=1):  # decode: the new token reads the kept keys only
        assert int(record.attention[layers - 1].pairs) == heads * (kept + step)
        assert int(record.attention[0].pairs) == heads * (seq + step)
    flops = count_sample(model.config, records, video_grid_thw=inputs["video_grid_thw"])
    assert 0 < flops.llm_prefill.reduction < 1 and flops.components["decode"].reduction > 0


def test_near_no_op_runs_the_pruning_path_and_matches_dense(prompt) -> None:
    model, inputs, dense = prompt
    with attached(model, "fastv", {"fastv_layer": 0, "fastv_keep": 1 - 1e-6}) as sparse:
        logits = model(**inputs).logits
        assert bool(sparse.rule.kept.all())
    assert torch.allclose(logits[:, -1], dense[:, -1], atol=1e-5)


def test_settings_are_checked(prompt) -> None:
    model, _, _ = prompt
    with pytest.raises(ConfigError, match=r"fastv_keep=0.0 is outside \(0, 1\]"):
        make_method("fastv", {"fastv_keep": "0"})
    refused = r"fastv_layer=3 leaves no layer to prune in this 4-layer model: pass 0..2"
    with pytest.raises(ConfigError, match=refused), attached(model, "fastv", {"fastv_layer": 3}):
        pass
    assert getattr(model, "adaspark", None) is None  # a refused rule leaves the stock model


def test_kernel_backends_gather_the_kept_tokens_and_agree_with_the_reference(prompt) -> None:
    """Where the kernels run (``backend`` triton here; auto on a GPU) layers K.. attend on the gathered kept
    tokens (one causal SDPA call): the same kept set, records and next-token logits as the masked reference,
    and a pruned row's attention output is zero instead of read over the kept keys."""
    model, inputs, _ = prompt
    runs = {}
    for backend in ("reference", "triton"):
        with attached(model, "fastv", {"fastv_layer": LAYER, "fastv_keep": KEEP}, backend=backend) as sparse:
            outputs = []
            hook = model.model.language_model.layers[LAYER + 1].self_attn.register_forward_hook(
                lambda module, args, out: outputs.append(out[0]))
            try:
                logits = model(**inputs).logits[:, -1]
            finally:
                hook.remove()
            record = sparse.records[-1]
            runs[backend] = (logits, sparse.rule.kept.clone(), outputs[0],
                             [[None if x is None else x.tolist() for x in (a.pairs, a.tokens)]
                              for a in record.attention.values()])
    (ref_logits, ref_kept, ref_out, ref_counts), (logits, kept, out, counts) = runs["reference"], runs["triton"]
    assert torch.equal(kept, ref_kept) and counts == ref_counts
    assert torch.allclose(logits, ref_logits, atol=1e-5, rtol=1e-4)
    pruned = ~kept[0]
    assert bool(pruned.any()) and bool((out[0, pruned] == 0).all()) and bool((ref_out[0, pruned] != 0).any())
    assert torch.allclose(out[0, ~pruned], ref_out[0, ~pruned], atol=1e-5)
