"""The tiny Qwen2-VL, Qwen3-VL and Qwen3-VL-MoE: built in memory in well under a second, and AdaSpark on each at
p = 1 is the stock model bit for bit, prefill and generation; lower p prunes; detach gives the stock model back."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.tiny_families import TINY_FAMILIES, build_tiny_family
from adaspark_eval.sparse.runtime import SparseMLP, SparseRuntime

FRAMES = np.random.default_rng(0).integers(0, 256, (8, 64, 96, 3), dtype=np.uint8)


def _inputs(name: str, processor):
    return video_prompt(processor, [FRAMES], "Which colour appears first?",
                        fps=2.0 if "qwen3" in name else None)


def _generate(model, inputs):
    out = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False, output_logits=True,
                         return_dict_in_generate=True)
    return out.sequences, torch.stack(out.logits)


@pytest.mark.parametrize("name", list(TINY_FAMILIES))
@torch.no_grad()
def test_p_one_is_the_stock_model_and_lower_p_prunes(name, one_torch_thread):
    start = time.perf_counter()
    model, processor = build_tiny_family(name)
    assert time.perf_counter() - start < 2
    inputs = _inputs(name, processor)
    dense_logits = model(**inputs).logits
    dense = _generate(model, inputs)
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=1.0, cube=(2, 2, 2)))
    assert sparse.family.name == TINY_FAMILIES[name]
    assert torch.equal(model(**inputs).logits, dense_logits)
    sequences, steps = _generate(model, inputs)
    assert torch.equal(sequences, dense[0]) and torch.equal(steps, dense[1])
    sparse.config = sparse.config.replace(p=0.5)
    assert not torch.equal(model(**inputs).logits, dense_logits)
    record = sparse.records[0]
    assert sum(int(s.tokens.sum()) for s in record.ffn.values()) < sum(
        int(s.dense_tokens.sum()) for s in record.ffn.values())
    sparse.detach()
    assert not any(isinstance(m, SparseMLP) for m in model.modules())
    assert torch.equal(model(**inputs).logits, dense_logits)


@torch.no_grad()
def test_moe_block_router_included_runs_on_kept_tokens_only(one_torch_thread):
    model, processor = build_tiny_family("tiny-qwen3-vl-moe")
    inputs = _inputs("tiny-qwen3-vl-moe", processor)
    layers = model.model.language_model.layers
    assert [hasattr(layer.mlp, "experts") for layer in layers] == [True, True, True, False]
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.5, attention=False))
    routed: dict[int, int] = {}
    handles = [layer.mlp.gate.register_forward_hook(
        lambda module, args, out, i=i: routed.__setitem__(i, args[0].shape[0] * args[0].shape[1]
                                                           if args[0].dim() == 3 else args[0].shape[0]))
        for i, layer in enumerate(layers[:3])]
    model(**inputs)
    for handle in handles:
        handle.remove()
    ffn = sparse.records[0].ffn
    assert routed == {i: int(ffn[i].tokens.sum()) for i in range(3)}
    assert all(int(ffn[i].tokens.sum()) < int(ffn[i].dense_tokens.sum()) for i in range(3))
    sparse.detach()
