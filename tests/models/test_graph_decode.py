"""The static-cache decode loop (``--decode graph``; on the CPU its step runs eagerly) gives ``generate``'s tokens,
stops at EOS where ``generate`` does, and leaves the records (so the FLOP counts) of ``generate``'s dense decode
steps, with AdaSpark attached and its prefill sparse."""

from __future__ import annotations

import pytest
import torch

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.models.graph_decode import CAPACITY_STEP, GraphDecoder
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.sparse.runtime import SparseRuntime
from tests.conftest import random_video

NEW_TOKENS = 6


@pytest.fixture()
def sparse_model(tiny, one_torch_thread):
    model, processor = tiny
    inputs = video_prompt(processor, [random_video(3, 8, 84, 112)], "Which colour appears first?")
    runtime = SparseRuntime.attach(model, AdaSparkConfig(fixed_ratio=0.5, cube=(2, 2, 2)))
    yield model, inputs, runtime, processor.tokenizer.eos_token_id
    runtime.detach()


def _record_values(records):
    """Each record's phase, lengths and per-layer counts as plain numbers."""
    def numbers(stats):
        return {k: None if v is None else v.tolist() for k, v in vars(stats).items()
                if k in ("pairs", "dense_pairs", "tokens", "dense_tokens", "visual_kept", "visual")}

    return [(r.phase, r.q_len, r.kv_len, r.batch, {i: numbers(a) for i, a in sorted(r.attention.items())},
             {i: numbers(f) for i, f in sorted(r.ffn.items())}) for r in records]


def _generate(model, inputs, eos, logits=False):
    out = model.generate(**inputs, eos_token_id=eos, pad_token_id=eos, do_sample=False, num_beams=1,
                         max_new_tokens=NEW_TOKENS, use_cache=True, output_logits=logits, return_dict_in_generate=True)
    return (out.sequences, torch.cat(out.logits[1:])) if logits else out.sequences


@torch.no_grad()
def test_static_loop_equals_generate_with_adaspark_attached(sparse_model):
    model, inputs, runtime, eos = sparse_model
    reference, reference_logits = _generate(model, inputs, eos, logits=True)
    reference_records = _record_values(runtime.records)
    reference_flops = count_sample(model.config, runtime.records, video_grid_thw=inputs["video_grid_thw"]).to_dict()
    assert reference.shape[1] == inputs["input_ids"].shape[1] + NEW_TOKENS  # random weights: no EOS here

    decoder = GraphDecoder(model)
    assert not decoder.graph  # no CUDA: the same step, run eagerly
    decoder.keep_logits = True
    sequences = decoder.generate(inputs, NEW_TOKENS, eos, eos)
    assert torch.equal(sequences, reference)
    torch.testing.assert_close(torch.cat(decoder.logits), reference_logits, rtol=1e-5, atol=1e-5)
    assert _record_values(runtime.records) == reference_records
    assert [r.phase for r in runtime.records] == ["prefill"] + ["decode"] * (NEW_TOKENS - 1)
    flops = count_sample(model.config, runtime.records, video_grid_thw=inputs["video_grid_thw"]).to_dict()
    assert flops == reference_flops
    assert decoder.kv.capacity == CAPACITY_STEP

    # EOS: the third new token made the stop token; both loops stop after it, records alike
    stop = int(reference[0, inputs["input_ids"].shape[1] + 2])
    shorter = _generate(model, inputs, stop)
    shorter_records = _record_values(runtime.records)
    assert decoder.generate(inputs, NEW_TOKENS, stop, stop).tolist() == shorter.tolist()
    assert _record_values(runtime.records) == shorter_records
    assert shorter.shape[1] < reference.shape[1]


def test_sparse_decode_is_refused(sparse_model):
    model, inputs, runtime, eos = sparse_model
    runtime.config = runtime.config.replace(sparse_decode=True)
    with pytest.raises(ValueError, match="sparse_decode"):
        GraphDecoder(model).generate(inputs, NEW_TOKENS, eos, eos)
