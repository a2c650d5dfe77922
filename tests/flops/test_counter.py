"""The in-run counter: one decoder layer on a toy input against a hand computation (dense, and sparse with
a fixed ratio so the kept work does not depend on the random weights), decode steps, a padded batch, the
result's dict form and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Qwen2_5_VLForConditionalGeneration

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.analytic import dense_flops
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.flops.dims import ModelDims
from adaspark_eval.flops.fvcore_count import count_forward
from adaspark_eval.flops.sample import COMPONENTS
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.tiny import tiny_config
from adaspark_eval.sparse.runtime import SparseRuntime

# The tiny model's text shape: hidden 64, 4 query / 2 KV heads of 16, MLP 128.
H, HEADS, KV_HEADS, D, MLP = 64, 4, 2, 16, 128
# 6 frames of 56x56: 3 x 2 x 2 LLM tokens; cubes of 1 x 2 x 2: three cubes of 4 tokens, one per frame pair.
TOY_FRAMES = np.random.default_rng(1).integers(0, 256, (6, 56, 56, 3), dtype=np.uint8)
SPARSE = AdaSparkConfig(fixed_ratio=0.5, cube=(1, 2, 2))


@pytest.fixture(scope="module")
def one_layer(tiny):
    _, processor = tiny
    config = tiny_config(processor.tokenizer, layers=1)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    return model, video_prompt(processor, [TOY_FRAMES], "Why?")


def hand_count(seq: int, vocab: int, sparse: bool) -> dict[str, int]:
    """The decoder layer and LM head by hand, in FLOPs (2 per multiply-add), for ``seq`` tokens.

    Sparse, fixed ratio 0.5: a query of the third cube has two candidate cubes of 4 earlier keys and keeps
    one (4 pairs fewer per head); one of the second cube keeps its single candidate; the first cube has none.
    The selection scores 4 * 1 + 4 * 2 candidates per head and averages the 12 visual keys per KV head. The
    FFN keeps ceil(0.5 * 4) = 2 tokens of each cube.
    """
    pairs = HEADS * seq * (seq + 1) // 2 - (HEADS * 4 * 4 if sparse else 0)
    return {
        "projections": 2 * seq * (H * HEADS * D + 2 * H * KV_HEADS * D + HEADS * D * H),
        "attention": 2 * pairs * (D + D),
        "selection": 2 * D * (HEADS * (4 * 1 + 4 * 2) + KV_HEADS * 12) if sparse else 0,
        "ffn": 2 * (seq - (6 if sparse else 0)) * 3 * H * MLP,
        "lm_head": 2 * H * vocab,
    }


@pytest.mark.parametrize("sparse", [False, True])
def test_one_decoder_layer_equals_the_hand_count(one_layer, sparse):
    model, inputs = one_layer
    seq, vocab = inputs["input_ids"].shape[1], model.config.text_config.vocab_size
    controller = SparseRuntime.attach(model, SPARSE if sparse else AdaSparkConfig(attention=False, ffn=False))
    try:
        traced = count_forward(model, inputs)
        flops = count_sample(model.config, controller.records, video_grid_thw=inputs["video_grid_thw"])
    finally:
        controller.detach()
    actual = hand_count(seq, vocab, sparse)
    dense = hand_count(seq, vocab, sparse=False)
    assert {name: traced[name] for name in actual} == actual
    assert {name: flops.components[name].actual for name in actual} == actual
    assert {name: flops.components[name].dense for name in dense} == dense
    assert flops.components["decode"].actual == 0
    assert flops.llm_prefill.actual == sum(actual.values())


@torch.no_grad()
def test_decode_steps_of_a_dense_generation_match_the_formula(tiny, video_inputs):
    model, _ = tiny
    controller = SparseRuntime.attach(model, AdaSparkConfig(p=0.5, cube=(2, 2, 2)))
    try:
        model.generate(**video_inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        flops = count_sample(model.config, controller.records, video_grid_thw=video_inputs["video_grid_thw"])
    finally:
        controller.detach()
    visual = int((video_inputs["input_ids"] == model.config.video_token_id).sum())
    formula = dense_flops(ModelDims.from_config(model.config), text_tokens=video_inputs["input_ids"].shape[1] - visual,
                          grids=video_inputs["video_grid_thw"].tolist(), decode_steps=3)
    assert flops.components["decode"] == formula.components["decode"]  # decode attention is dense by default
    assert flops.total.dense == formula.total.actual
    assert flops.llm_prefill.actual < flops.llm_prefill.dense


@torch.no_grad()
def test_each_sample_of_a_padded_batch_counts_as_alone(tiny):
    model, processor = tiny
    questions = ("Why?", "What is the colour of the object in the first frame?")
    text = [processor.apply_chat_template([{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q}]}],
                                          add_generation_prompt=True) for q in questions]
    batch = processor(text=text, videos=[TOY_FRAMES, TOY_FRAMES], padding=True, return_tensors="pt",
                      do_sample_frames=False)
    controller = SparseRuntime.attach(model, AdaSparkConfig(attention=False, ffn=False))
    try:
        model(**batch)
        counted = [count_sample(model.config, controller.records, video_grid_thw=batch["video_grid_thw"][i:i + 1],
                                sample=i) for i in range(2)]
        with pytest.raises(ValueError, match="sample=i"):
            count_sample(model.config, controller.records, video_grid_thw=batch["video_grid_thw"])
    finally:
        controller.detach()
    for i, question in enumerate(questions):
        alone = video_prompt(processor, [TOY_FRAMES], question)
        assert counted[i] == count_sample(ModelDims.from_config(model.config), _records(model, alone),
                                          video_grid_thw=alone["video_grid_thw"])


def _records(model, inputs):
    controller = SparseRuntime.attach(model, AdaSparkConfig(attention=False, ffn=False))
    try:
        model(**inputs)
        return controller.records
    finally:
        controller.detach()


def test_the_dict_form_is_the_results_schema(one_layer):
    model, inputs = one_layer
    records = _records(model, inputs)
    out = count_sample(model.config, records, video_grid_thw=inputs["video_grid_thw"]).to_dict()
    assert list(out) == ["components", "llm_prefill", "total"]
    assert list(out["components"]) == list(COMPONENTS)
    assert all(set(c) == {"actual", "dense"} and all(isinstance(v, int) for v in c.values())
               for c in out["components"].values())
    assert set(out["total"]) == {"actual", "dense", "reduction"} and out["total"]["reduction"] == 0.0


def test_records_without_statistics_are_refused(one_layer):
    model, inputs = one_layer
    records = _records(model, inputs)
    records[0].attention.clear()
    with pytest.raises(ValueError, match="AdaSpark attached"):
        count_sample(model.config, records)
    with pytest.raises(ValueError, match="one prefill"):
        count_sample(model.config, [])
