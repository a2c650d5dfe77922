"""The kernels inside the model: ``backend=triton`` runs them in every sparse layer of a prefill and
agrees with ``backend=reference`` (Triton's CPU interpreter stands in for a GPU)."""

import numpy as np
import torch
from transformers import Qwen2_5_VLForConditionalGeneration

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.tiny import build_processor, tiny_config
from adaspark_eval.sparse.kernels import dispatch
from adaspark_eval.sparse.qwen2_5_vl import SparseRuntime
from tests.sparse.interpreted import INTERPRETED, needs_interpreter

if INTERPRETED:
    from adaspark_eval.sparse.kernels import attention as kernel_module


def test_cpu_float32_and_non_prefill_calls_use_the_reference():
    x = torch.zeros(1, 2, 8, 16)
    assert not dispatch.use_kernels("auto", x) and dispatch.use_kernels("triton", x)
    assert not dispatch.use_kernels("reference", x)
    assert dispatch.ffn_functions("auto", x).keep_tokens.__module__ == "adaspark_eval.sparse.ffn"
    assert dispatch.ffn_functions("triton", x).sparse_ffn.__module__ == "adaspark_eval.sparse.ffn"  # float32


@needs_interpreter
@torch.no_grad()
def test_triton_backend_matches_reference_in_a_prefill(monkeypatch):
    processor = build_processor()
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(processor.tokenizer, layers=1)).to(torch.bfloat16).eval()
    video = np.random.RandomState(1).randint(0, 256, (8, 112, 112, 3), dtype=np.uint8)
    inputs = video_prompt(processor, [video], "Which colour appears first?")
    original, calls = kernel_module.kernel_attention, []

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(kernel_module, "kernel_attention", spy)
    results = {}
    for backend in ("reference", "triton"):
        sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.5, cube=(2, 2, 4), select="cube", backend=backend))
        logits = model(**inputs).logits
        record = sparse.records[0]
        sparse.detach()
        results[backend] = (logits.float(), record.attention[0], record.ffn[0])
    assert calls == [1]
    (ref_logits, ref_attn, ref_ffn), (logits, attn, ffn) = results["reference"], results["triton"]
    assert (logits - ref_logits).norm() / ref_logits.norm() < 2e-2
    assert torch.equal(attn.pairs, ref_attn.pairs) and torch.equal(attn.score_dots, ref_attn.score_dots)
    assert torch.allclose(attn.kept_fraction, ref_attn.kept_fraction) and torch.equal(ffn.tokens, ref_ffn.tokens)
