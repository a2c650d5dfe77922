"""Fused RMSNorm / rotary embedding / SiLU-and-multiply (kernels: ``sparse.kernels.fused``; swapped in by
``models.fused``) against transformers' eager ops, under Triton's CPU interpreter (run by
``tests/sparse/test_kernels_interpreter.py``); the GPU-only refusal in any session.

In float16 and float32: the interpreter narrows float32 to bfloat16 by truncation where GPUs round to nearest,
so bfloat16 agreement to the last bit is checked on the GPU (``benchmarks/bench_kernels.py``, section check:
``benchmarks/kernel_bench/check.py``)."""

from __future__ import annotations

import pytest
import torch
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

from adaspark_eval.models import fused
from adaspark_eval.models.loading import load_model
from adaspark_eval.sparse.kernels.fused import silu_mul
from tests.sparse.interpreted import needs_interpreter


def _close_to_eager(got: torch.Tensor, want: torch.Tensor) -> None:
    """Within two units in the last place of eager; in 16 bits also equal in most elements (the kernels round
    where eager rounds; float32 summation order and exp differ in the last bit)."""
    assert got.dtype == want.dtype and got.shape == want.shape and got.stride(-1) == 1
    ulp = torch.finfo(got.dtype).eps
    assert torch.allclose(got.float(), want.float(), rtol=2 * ulp, atol=1e-6)
    assert got.dtype == torch.float32 or (got == want).float().mean() > 0.9


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_rms_norm_equals_eager(dtype: torch.dtype):
    gen = torch.Generator().manual_seed(0)
    norm = qwen.Qwen2_5_VLRMSNorm(48, eps=1e-6).to(dtype)
    norm.weight.data = torch.randn(48, generator=gen).to(dtype)
    fused_norm = fused.FusedRMSNorm(48, eps=1e-6).to(dtype)
    fused_norm.load_state_dict(norm.state_dict())
    x = (torch.randn(3, 5, 48, generator=gen) * 4).to(dtype)
    _close_to_eager(fused_norm(x), norm(x))


@needs_interpreter
def test_rotary_embedding_equals_eager_on_transposed_projections():
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(2, 7, 3, 32, generator=gen).half().transpose(1, 2)  # (B, H, S, D) view, as the attention
    k = torch.randn(2, 7, 1, 32, generator=gen).half().transpose(1, 2)
    cos, sin = (torch.randn(2, 7, 32, generator=gen).half() for _ in range(2))
    for got, want in zip(fused.apply_rotary_pos_emb(q, k, cos, sin), fused.ORIGINAL_ROTARY(q, k, cos, sin)):
        _close_to_eager(got, want)


@needs_interpreter
def test_silu_mul_equals_eager():
    gen = torch.Generator().manual_seed(2)
    gate, up = (torch.randn(9, 70, generator=gen).half() * 3 for _ in range(2))
    _close_to_eager(silu_mul(gate, up), torch.nn.functional.silu(gate) * up)


@needs_interpreter
@torch.no_grad()
def test_fused_tiny_model_matches_and_unfuse_restores_it():
    loaded = load_model("tiny")
    model, processor = loaded.model, loaded.processor
    inputs = processor(text=["<|im_start|>user\nWhat comes next?<|im_end|>\n"], return_tensors="pt")
    eager = model(**inputs).logits
    fused.fuse(model)
    assert qwen.apply_rotary_pos_emb is fused.apply_rotary_pos_emb
    assert any(isinstance(m, fused.FusedRMSNorm) for m in model.modules())
    assert any(isinstance(m, fused.FusedMLP) for m in model.modules())
    assert torch.allclose(model(**inputs).logits, eager, rtol=1e-4, atol=1e-5)
    fused.unfuse(model)
    assert qwen.apply_rotary_pos_emb is fused.ORIGINAL_ROTARY
    assert not any(type(m) in (fused.FusedRMSNorm, fused.FusedMLP) for m in model.modules())
    assert torch.equal(model(**inputs).logits, eager)


def test_fused_ops_on_the_cpu_is_refused_naming_the_fix():
    if fused.runs_on(torch.device("cpu")):
        pytest.skip("the kernels run here (TRITON_INTERPRET=1)")
    with pytest.raises(fused.FusedOpsError, match="--device cuda or drop --fused-ops"):
        load_model("tiny", device="cpu", fused_ops=True)
