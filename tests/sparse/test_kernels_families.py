"""The kernels inside a Qwen3-VL (dense and MoE): cubes that span timestamp text between temporal groups, and
an MoE block on the kept tokens, agree with ``backend=reference`` (Triton's CPU interpreter stands in for a
GPU), as ``test_kernels_model`` shows for Qwen2.5-VL."""

import numpy as np
import pytest
import torch

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.tiny_families import MODEL_CLASSES, build_processor, init_experts, tiny_config
from adaspark_eval.sparse.qwen2_5_vl import SparseRuntime
from tests.sparse.interpreted import INTERPRETED, needs_interpreter

if INTERPRETED:
    from adaspark_eval.sparse.kernels import attention as kernel_module


@needs_interpreter
@pytest.mark.parametrize("family", ["qwen3-vl-moe"])  # its layout is the dense one's
@torch.no_grad()
def test_triton_backend_matches_reference_in_a_qwen3_prefill(family, monkeypatch):
    processor = build_processor(family)
    config = tiny_config(family, processor.tokenizer)
    config.text_config.num_hidden_layers = 1
    torch.manual_seed(0)
    model = init_experts(MODEL_CLASSES[family](config)).to(torch.bfloat16).eval()
    video = np.random.RandomState(1).randint(0, 256, (8, 64, 96, 3), dtype=np.uint8)
    inputs = video_prompt(processor, [video], "Which colour appears first?", fps=2.0)
    original, calls = kernel_module.kernel_attention, []

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(kernel_module, "kernel_attention", spy)
    results = {}
    for backend in ("reference", "triton"):
        sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.5, cube=(2, 2, 2), select="cube", backend=backend))
        logits = model(**inputs).logits
        record = sparse.records[0]
        sparse.detach()
        results[backend] = (logits.float(), record.attention[0], record.ffn[0])
    assert calls == [1]
    (ref_logits, ref_attn, ref_ffn), (logits, attn, ffn) = results["reference"], results["triton"]
    assert (logits - ref_logits).norm() / ref_logits.norm() < 2e-2
    assert torch.equal(attn.pairs, ref_attn.pairs) and torch.equal(attn.score_dots, ref_attn.score_dots)
    assert torch.allclose(attn.kept_fraction, ref_attn.kept_fraction) and torch.equal(ffn.tokens, ref_ffn.tokens)
