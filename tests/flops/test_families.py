"""FLOPs of the other families: on each tiny model the dense formula equals fvcore's trace and the in-run count
of a sparse run equals fvcore's (DeepStack mergers, LayerNorm-free ViT, routed experts and router included),
and ``flops --model qwen3-vl-8b`` / ``qwen3-vl-30b-a3b`` equal a count by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.analytic import dense_flops
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.flops.dims import ModelDims
from adaspark_eval.flops.fvcore_count import count_forward
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.tiny_families import TINY_FAMILIES, build_tiny_family
from adaspark_eval.sparse.runtime import SparseRuntime

FRAMES = np.random.default_rng(0).integers(0, 256, (8, 64, 96, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", list(TINY_FAMILIES))
def test_fvcore_equals_the_formula_dense_and_the_in_run_count_sparse(name):
    model, processor = build_tiny_family(name)
    inputs = dict(video_prompt(processor, [FRAMES], "What happens?", fps=2.0 if "qwen3" in name else None))
    visual = int((inputs["input_ids"] == model.config.video_token_id).sum())
    dims = ModelDims.from_config(model.config)
    formula = dense_flops(dims, text_tokens=inputs["input_ids"].shape[1] - visual, grids=inputs["video_grid_thw"].tolist())
    assert count_forward(model, inputs) == {k: c.actual for k, c in formula.components.items() if k != "decode"}
    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.6, cube=(2, 2, 2)))
    traced = count_forward(model, inputs)
    model(**inputs, logits_to_keep=1)
    counted = count_sample(model.config, sparse.records, video_grid_thw=inputs["video_grid_thw"])
    assert traced == {k: c.actual for k, c in counted.components.items() if k != "decode"}
    assert 0 < counted.llm_prefill.reduction < 1
    assert {k: c.dense for k, c in counted.components.items()} == {k: c.actual for k, c in formula.components.items()}
    sparse.detach()


def _vision_by_hand(frames: int, side: int, hidden: int, depth: int, intermediate: int, out: int, mergers: int) -> int:
    """Qwen3-VL's ViT in multiply-adds: patch 16, 2 frames a patch, merge 2, full attention per frame group."""
    t, h = frames // 2, side // 16
    patches = t * h * h
    return (patches * hidden * 3 * 2 * 16 * 16 + depth * patches * (4 * hidden**2 + 2 * hidden * intermediate)
            + depth * t * (h * h) ** 2 * 2 * hidden + mergers * patches // 4 * ((4 * hidden) ** 2 + 4 * hidden * out))


@pytest.mark.parametrize("model", ["qwen3-vl-8b", "qwen3-vl-30b-a3b"])
def test_known_qwen3_config_equals_a_count_by_hand(model):
    result = CliRunner().invoke(app, ["flops", "--model", model, "--frames", "64", "--size", "448x448", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["video_grid_thw"] == [[32, 28, 28]] and report["tokens"]["visual"] == 32 * 14 * 14
    seq = report["tokens"]["text"] + report["tokens"]["visual"]
    assert report["tokens"]["text"] > 32 * 4  # a "<t seconds>" before each of the 32 temporal groups
    if model == "qwen3-vl-8b":  # 36 layers of 32 / 8 heads of 128, MLP 12288, ViT 27 x 1152 with 3 DeepStack levels
        layers, hidden, heads, kv, ffn, vision = 36, 4096, 32, 8, 3 * 4096 * 12288, (1152, 27, 4304)
    else:  # 48 layers of 32 / 4 heads, router over 128 experts, 8 experts of 768 per token
        layers, hidden, heads, kv, ffn, vision = 48, 2048, 32, 4, 2048 * 128 + 8 * 3 * 2048 * 768, (1152, 27, 4304)
    expected = {
        "projections": layers * seq * hidden * 128 * 2 * (heads + kv),
        "attention": layers * heads * seq * (seq + 1) // 2 * 2 * 128,
        "ffn": layers * seq * ffn,
        "lm_head": hidden * 151936,
        "vision_encoder": _vision_by_hand(64, 448, *vision, out=hidden, mergers=4),
    }
    assert {k: report["components"][k]["actual"] for k in expected} == {k: 2 * v for k, v in expected.items()}
