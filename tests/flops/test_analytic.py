"""The dense formula against what the real transformers modules compute: the tiny model counted by fvcore
(exactly) and by torch's FlopCounterMode (within 1%: it also counts the rotary tables' matmul), the known
configs against the published model sizes, and Qwen2.5-VL-7B on 64 frames of 448x448 against its own
modules on the meta device (no weights)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import Qwen2_5_VLForConditionalGeneration
from transformers.vision_utils import get_vision_attention_seqlens, get_vision_window_index

from adaspark_eval.flops.analytic import dense_flops
from adaspark_eval.flops.dims import ModelDims, known_config
from adaspark_eval.flops.fvcore_count import count_forward
from adaspark_eval.flops.handles import FLOP_COUNTER_FORMULAS, FVCORE_HANDLES
from adaspark_eval.flops.sample import LLM_PREFILL
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.tiny import build_processor


def analytic_prefill(model: nn.Module, inputs) -> dict[str, int]:
    visual = int((inputs["input_ids"] == model.config.video_token_id).sum())
    flops = dense_flops(ModelDims.from_config(model.config), text_tokens=inputs["input_ids"].shape[1] - visual,
                        grids=inputs["video_grid_thw"].tolist())
    return {name: c.actual for name, c in flops.components.items() if name != "decode"}


def test_tiny_dense_formula_equals_fvcore(tiny, video_inputs):
    model, _ = tiny
    expected = analytic_prefill(model, video_inputs)
    assert count_forward(model, video_inputs) == expected
    assert expected["attention"] > 0 and expected["selection"] == 0


@torch.no_grad()
def test_tiny_dense_formula_within_one_percent_of_flop_counter(tiny, video_inputs):
    model, _ = tiny
    with FlopCounterMode(display=False, custom_mapping=FLOP_COUNTER_FORMULAS) as counter:
        model(**video_inputs, logits_to_keep=1)
    expected = sum(analytic_prefill(model, video_inputs).values())
    assert abs(counter.get_total_flops() - expected) <= 0.01 * expected
    assert counter.get_total_flops() != expected  # the rotary tables: counted there, not here


@pytest.mark.parametrize(("name", "billions"), [("qwen2.5-vl-3b", 3.75), ("qwen2.5-vl-7b", 8.29),
                                                ("qwen2.5-vl-32b", 33.5), ("qwen2.5-vl-72b", 73.4)])
def test_known_configs_build_the_published_model_sizes(name, billions):
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(known_config(name))
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 2 if billions < 10 else 1) == billions


def traced(module: nn.Module, call: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> FlopCountAnalysis:
    """fvcore (with our handles, in multiply-adds) over ``call(module, *inputs)``; ``module`` is registered so
    that its (meta) parameters are trace inputs, not constants."""

    class Call(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return call(self.module, *tensors)

    analysis = FlopCountAnalysis(Call(), inputs).set_op_handle(**FVCORE_HANDLES)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return analysis


@torch.no_grad()
def test_7b_dense_prefill_of_64_frames_at_448_matches_its_modules():
    config = known_config("qwen2.5-vl-7b")
    config._attn_implementation = "sdpa"
    inputs = video_prompt(build_processor(max_pixels=448 * 448), [np.zeros((64, 448, 448, 3), np.uint8)],
                          "What happens in the video?")
    grid = inputs["video_grid_thw"]
    assert grid.tolist() == [[32, 32, 32]]  # 64 frames / 2, 448 / 14 patches a side: 8192 LLM tokens
    seq = inputs["input_ids"].shape[1]
    expected = dense_flops(ModelDims.from_config(config), text_tokens=seq - 8192, grids=grid.tolist()).components

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    vision, text = model.model.visual, config.text_config
    patches = torch.empty(32 * 32 * 32, 3 * 2 * 14 * 14, device="meta")
    hidden = torch.empty(patches.shape[0], 1280, device="meta")
    rotary = torch.empty(patches.shape[0], 80, device="meta")
    windows = get_vision_window_index(grid, spatial_merge_size=2, window_size=112, patch_size=14)[1]
    frames = get_vision_attention_seqlens(grid, config.vision_config)[0]

    def block(index: int, cu_seqlens: torch.Tensor) -> int:
        return traced(vision.blocks[index], lambda blk, x, cos, sin: blk(x, cu_seqlens=cu_seqlens, position_embeddings=(
            cos, sin)), hidden, rotary, rotary).total()

    assert config.vision_config.fullatt_block_indexes == [7, 15, 23, 31]
    with FlopCounterMode(display=False) as embed:  # tracing a meta Conv3d fails: count it by dispatch
        vision.patch_embed(patches)
    blocks_and_merger = 28 * block(0, windows) + 4 * block(7, frames) + traced(vision.merger, nn.Module.__call__, hidden).total()
    assert embed.get_total_flops() + 2 * blocks_and_merger == expected["vision_encoder"].actual

    states = torch.empty(1, seq, text.hidden_size, device="meta")
    cos = torch.empty(1, seq, text.hidden_size // text.num_attention_heads, device="meta")
    layer = traced(model.model.language_model.layers[0], lambda layer, x, c, s: layer(x, position_embeddings=(c, s)),
                   states, cos, cos).by_operator()
    lm_head = traced(model.lm_head, nn.Module.__call__, states[:, -1:]).total()
    assert 2 * text.num_hidden_layers * layer["scaled_dot_product_attention"] == expected["attention"].actual
    assert 2 * (text.num_hidden_layers * layer["linear"] + lm_head) == sum(
        expected[name].actual for name in ("projections", "ffn", "lm_head"))
    prefill = sum(expected[name].actual for name in LLM_PREFILL)
    assert round(prefill / 1e12, 1) == 121.1 and round(expected["vision_encoder"].actual / 1e12, 1) == 43.1
