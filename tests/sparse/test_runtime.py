"""AdaSpark hooked into the tiny Qwen2.5-VL: exactness at p = 1, knobs, generation, batching."""

import importlib
import sys

import pytest
import torch

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.sparse.runtime import SparseRuntime, SparseMLP
from tests.conftest import random_video

# grids (LLM tokens): 8 x 4 x 5 and 4 x 3 x 4; cube 3 x 3 x 3 divides neither
VIDEOS = [random_video(1, 16, 112, 140), random_video(2, 8, 84, 112)]
CUBE = (3, 3, 3)


@pytest.fixture()
def model_and_inputs(tiny):
    model, processor = tiny
    inputs = video_prompt(processor, VIDEOS, "Which colour appears first?")
    yield model, processor, inputs
    if getattr(model, "adaspark", None) is not None:
        model.adaspark.detach()


def _generate(model, inputs, tokens=4):
    out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                         output_logits=True, return_dict_in_generate=True)
    return out.sequences, torch.stack(out.logits)


@torch.no_grad()
def test_p_one_equals_dense_bit_for_bit(model_and_inputs):
    model, _, inputs = model_and_inputs
    assert inputs["video_grid_thw"].tolist() == [[8, 8, 10], [4, 6, 8]]
    dense_logits = model(**inputs).logits
    dense_sequences, dense_steps = _generate(model, inputs)
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=1.0, cube=CUBE))
    assert torch.equal(model(**inputs).logits, dense_logits)
    sequences, steps = _generate(model, inputs)
    assert torch.equal(sequences, dense_sequences) and torch.equal(steps, dense_steps)
    assert [r.phase for r in sparse.records] == ["prefill", "decode", "decode", "decode"]
    summary = sparse.records[0].layer_summary(sparse.num_layers)
    assert all(row["kept_cube_fraction"] == 1.0 and row["ffn_active_fraction"] == 1.0 for row in summary)


@torch.no_grad()
def test_lower_p_keeps_fewer_cubes_and_tokens(model_and_inputs):
    model, _, inputs = model_and_inputs
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=1.0, cube=CUBE))
    work = []
    for p in (1.0, 0.9, 0.7, 0.5, 0.3):
        sparse.config = sparse.config.replace(p=p)  # no reload between settings
        model(**inputs)
        record = sparse.records[0]
        first = record.layer_summary(sparse.num_layers)[0]
        pairs = sum(int(s.pairs.sum()) for s in record.attention.values())
        tokens = sum(int(s.tokens.sum()) for s in record.ffn.values())
        work.append((first["kept_cube_fraction"], first["ffn_active_fraction"], pairs, tokens))
    for before, after in zip(work, work[1:]):
        assert all(a <= b for a, b in zip(after, before)), work
    assert work[-1][0] < 0.6 and work[-1][1] < 0.6 and work[-1][2] < work[0][2] and work[-1][3] < work[0][3]


@torch.no_grad()
@pytest.mark.parametrize("rule", [{"p": 0.5}, {"fixed_ratio": 0.3}])  # counted on the GPU / from the group sizes
def test_each_mlp_runs_the_rows_its_plan_counted_ahead_and_no_plan_outlives_the_forward(model_and_inputs, rule):
    model, _, inputs = model_and_inputs
    sparse = SparseRuntime.attach(model, AdaSparkConfig(**rule, cube=CUBE))
    rows: list[int] = []
    layers = model.model.language_model.layers
    handles = [layer.mlp.gate_proj.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[-2]))
               for layer in layers]
    model(**inputs)
    for handle in handles:
        handle.remove()
    tokens = [int(sparse.records[0].ffn[layer.self_attn.layer_idx].tokens.sum()) for layer in layers]
    assert rows == tokens and max(tokens) < inputs["input_ids"].numel()
    assert sparse.state.plans == {}


@torch.no_grad()
def test_sparse_prefill_changes_output_and_generation_continues(model_and_inputs):
    model, _, inputs = model_and_inputs
    dense_logits = model(**inputs).logits
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.5, cube=CUBE))
    assert not torch.allclose(model(**inputs).logits, dense_logits)
    sequences, _ = _generate(model, inputs, tokens=3)
    assert sequences.shape[1] == inputs["input_ids"].shape[1] + 3
    assert all(r.attention[0].kept_fraction is None for r in sparse.records[1:])  # decode is dense by default
    sparse.config = sparse.config.replace(sparse_decode=True)
    _generate(model, inputs, tokens=2)
    decode = sparse.records[-1].attention[0]
    assert decode.kept_fraction is not None and float(decode.kept_fraction.mean()) < 1.0
    assert int(decode.pairs.sum()) < int(decode.dense_pairs.sum())


@torch.no_grad()
def test_detach_gives_the_stock_model_back(model_and_inputs):
    model, _, inputs = model_and_inputs
    keys = list(model.state_dict())
    dense_logits = model(**inputs).logits
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.4, cube=CUBE))
    assert list(model.state_dict()) == keys  # same parameters, same names
    assert isinstance(model.model.language_model.layers[0].mlp, SparseMLP)
    model(**inputs)
    sparse.detach()
    assert model.config.text_config._attn_implementation == "sdpa"
    assert not isinstance(model.model.language_model.layers[0].mlp, SparseMLP)
    assert torch.equal(model(**inputs).logits, dense_logits)


@torch.no_grad()
def test_dense_layers_and_module_switches(model_and_inputs):
    model, _, inputs = model_and_inputs
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.4, cube=CUBE, dense_layers=(0,)))
    model(**inputs)
    rows = sparse.records[0].layer_summary(sparse.num_layers)
    assert rows[0]["kept_cube_fraction"] == 1.0 and rows[0]["ffn_active_fraction"] == 1.0
    assert rows[1]["kept_cube_fraction"] < 1.0 and rows[1]["ffn_active_fraction"] < 1.0
    sparse.config = sparse.config.replace(dense_layers="", ffn=False)
    model(**inputs)
    rows = sparse.records[0].layer_summary(sparse.num_layers)
    assert all(r["ffn_active_fraction"] == 1.0 and r["kept_cube_fraction"] < 1.0 for r in rows)


@torch.no_grad()
def test_padded_batch_matches_single_samples(tiny):
    model, processor = tiny
    prompts = [("What moves?", [VIDEOS[0]]), ("Count the frames, please, one by one.", [VIDEOS[1]])]
    texts = [processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q}]}], add_generation_prompt=True)
        for q, _ in prompts]
    batch = processor(text=texts, videos=[v for _, vs in prompts for v in vs], return_tensors="pt", padding=True,
                      do_sample_frames=False)
    assert (batch["attention_mask"] == 0).any()  # left padding in the shorter sample
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.6, cube=CUBE))
    try:
        batched = model(**batch).logits[:, -1]
        batch_fraction = sparse.records[0].layer_summary(sparse.num_layers)[0]["kept_cube_fraction"]
        for index, (question, videos) in enumerate(prompts):
            single = model(**video_prompt(processor, videos, question)).logits[0, -1]
            assert torch.allclose(batched[index], single, atol=1e-4)
        assert 0 < batch_fraction < 1
    finally:
        sparse.detach()


@torch.no_grad()
def test_text_only_forward_reports_no_selection(model_and_inputs):
    """No query has candidates: the per-layer statistics stay unread until the summary, which reports
    nothing selected (kept fraction 1, no per-head fractions, no entropy)."""
    model, processor, _ = model_and_inputs
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "Hello there."}]}],
                                         add_generation_prompt=True)
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.5, cube=CUBE))
    model(**processor(text=[text], return_tensors="pt"))
    rows = sparse.records[0].layer_summary(sparse.num_layers)
    assert all(r["kept_cube_fraction"] == 1.0 and r["kept_cube_fraction_per_head"] is None and r["entropy"] is None
               for r in rows)


def test_the_old_module_name_still_imports_the_runtime_and_warns():
    sys.modules.pop("adaspark_eval.sparse.qwen2_5_vl", None)
    with pytest.warns(DeprecationWarning, match="adaspark_eval.sparse.runtime"):
        old = importlib.import_module("adaspark_eval.sparse.qwen2_5_vl")
    assert old.SparseRuntime is SparseRuntime and old.SparseMLP is SparseMLP
