"""The kernels inside the model: ``backend=triton`` runs them in every sparse layer of a prefill and
agrees with ``backend=reference`` (Triton's CPU interpreter stands in for a GPU), in Qwen2.5-VL and in a
Qwen3-VL-MoE."""

import numpy as np
import pytest
import torch
from transformers import Qwen2_5_VLForConditionalGeneration

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.tiny import build_processor, tiny_config
from adaspark_eval.models.tiny_families import MODEL_CLASSES, init_experts
from adaspark_eval.models.tiny_families import build_processor as family_processor
from adaspark_eval.models.tiny_families import tiny_config as family_config
from adaspark_eval.sparse.kernels import dispatch
from adaspark_eval.sparse.runtime import SparseRuntime
from tests.sparse.interpreted import INTERPRETED, needs_interpreter

if INTERPRETED:
    from adaspark_eval.sparse.kernels import attention as kernel_module


def test_cpu_float32_and_non_prefill_calls_use_the_reference():
    x = torch.zeros(1, 2, 8, 16)
    assert not dispatch.use_kernels("auto", x) and dispatch.use_kernels("triton", x)
    assert not dispatch.use_kernels("reference", x)
    assert dispatch.ffn_functions("auto", x).keep_tokens.__module__ == "adaspark_eval.sparse.ffn"
    assert dispatch.ffn_functions("triton", x).sparse_ffn.__module__ == "adaspark_eval.sparse.ffn"  # float32


def qwen2_5_vl_prefill():
    """A 1-layer bf16 tiny Qwen2.5-VL and a video prompt; its cubes."""
    processor = build_processor()
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(processor.tokenizer, layers=1)).to(torch.bfloat16).eval()
    video = np.random.RandomState(1).randint(0, 256, (8, 112, 112, 3), dtype=np.uint8)
    return model, video_prompt(processor, [video], "Which colour appears first?"), (2, 2, 4)


def qwen3_vl_moe_prefill():
    """A 1-layer bf16 tiny Qwen3-VL-MoE (cubes across the timestamp text, the expert block on kept tokens; its
    layout is the dense Qwen3-VL's) and a video prompt; its cubes."""
    processor = family_processor("qwen3-vl-moe")
    config = family_config("qwen3-vl-moe", processor.tokenizer)
    config.text_config.num_hidden_layers = 1
    torch.manual_seed(0)
    model = init_experts(MODEL_CLASSES["qwen3-vl-moe"](config)).to(torch.bfloat16).eval()
    video = np.random.RandomState(1).randint(0, 256, (8, 64, 96, 3), dtype=np.uint8)
    return model, video_prompt(processor, [video], "Which colour appears first?", fps=2.0), (2, 2, 2)


@needs_interpreter
@pytest.mark.parametrize("build", [qwen2_5_vl_prefill, qwen3_vl_moe_prefill])
@torch.no_grad()
def test_triton_backend_matches_reference_in_a_prefill(build, monkeypatch):
    model, inputs, cube = build()
    original, calls = kernel_module.kernel_attention, []

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(kernel_module, "kernel_attention", spy)
    results = {}
    for backend in ("reference", "triton"):
        sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.5, cube=cube, select="cube", backend=backend))
        logits = model(**inputs).logits
        record = sparse.records[0]
        sparse.detach()
        results[backend] = (logits.float(), record.attention[0], record.ffn[0])
    assert calls == [1]
    (ref_logits, ref_attn, ref_ffn), (logits, attn, ffn) = results["reference"], results["triton"]
    assert (logits - ref_logits).norm() / ref_logits.norm() < 2e-2
    assert torch.equal(attn.pairs, ref_attn.pairs) and torch.equal(attn.score_dots, ref_attn.score_dots)
    assert torch.allclose(attn.kept_fraction, ref_attn.kept_fraction) and torch.equal(ffn.tokens, ref_ffn.tokens)
