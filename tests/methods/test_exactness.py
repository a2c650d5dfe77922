"""Each method's no-op setting is the dense model bit for bit, prefill and generation, and its records
count the dense FLOPs."""

from __future__ import annotations

import pytest
import torch

from adaspark_eval.flops.counter import count_sample
from tests.methods.conftest import attached

NO_OPS = [
    ("dense", {}, {}),
    ("adaspark", {}, {"p": 1.0}),
    ("topk", {}, {"fixed_ratio": 1.0}),
    ("window", {"window": 8}, {"cube": (2, 2, 2)}),  # 8 time steps: every slab of both videos
    ("fastv", {"fastv_keep": 1.0}, {}),
    ("frames", {"frame_budget": 1.0}, {}),
    ("xattention", {"xattn_threshold": 1.0, "xattn_block": 16, "xattn_stride": 4}, {}),
    ("flexprefill", {"flex_gamma": 1.0, "flex_block": 16}, {}),
    ("visionzip", {"visionzip_keep": 1.0}, {}),
    ("dycoke", {"dycoke_merge": 0.0, "dycoke_prune": 0.0}, {}),
]


@pytest.mark.parametrize("name, settings, knobs", NO_OPS, ids=[n for n, _, _ in NO_OPS])
def test_no_op_setting_equals_dense(prompt, name, settings, knobs) -> None:
    model, inputs, dense = prompt
    with torch.no_grad():
        stock = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    with attached(model, name, settings, **knobs) as sparse:
        assert torch.equal(model(**inputs).logits, dense)
        assert torch.equal(model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False), stock)
        flops = count_sample(model.config, sparse.records, video_grid_thw=inputs["video_grid_thw"])
    parts = {k: v for k, v in flops.components.items() if k != "selection"}  # topk/adaspark still score cubes
    assert all(part.actual == part.dense for part in parts.values())
