"""Device maps: layers dealt out in contiguous near-equal runs, one-line errors, and a mapped model that
computes what the unmapped one does (on the CPU the map has one device; several GPUs: benchmarks/multi_gpu.py)."""

from __future__ import annotations

import pytest
import torch

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.dims import known_config
from adaspark_eval.models.loading import load_model
from adaspark_eval.models.prompt import video_prompt
from adaspark_eval.models.placement import PlacementError, input_device, layer_device_map, parse_devices
from adaspark_eval.sparse.runtime import SparseRuntime
from tests.conftest import random_video


def layer_devices(device_map: dict[str, str], layers: int) -> list[str]:
    return [device_map[f"model.language_model.layers.{i}"] for i in range(layers)]


def test_72b_over_three_gpus_in_contiguous_near_equal_runs() -> None:
    device_map = layer_device_map(known_config("qwen2.5-vl-72b"), ["cuda:0", "cuda:1", "cuda:2"])
    assert layer_devices(device_map, 80) == ["cuda:0"] * 27 + ["cuda:1"] * 27 + ["cuda:2"] * 26
    assert device_map["model.visual"] == device_map["model.language_model.embed_tokens"] == "cuda:0"
    assert device_map["model.language_model.norm"] == device_map["lm_head"] == "cuda:2"
    assert input_device(device_map) == torch.device("cuda:0")


def test_tied_lm_head_stays_with_the_embedding() -> None:
    device_map = layer_device_map(known_config("qwen2.5-vl-3b"), ["cuda:0", "cuda:1"])
    assert device_map["lm_head"] == "cuda:0" and device_map["model.language_model.norm"] == "cuda:1"
    assert layer_devices(device_map, 36) == ["cuda:0"] * 18 + ["cuda:1"] * 18


@pytest.mark.parametrize(("text", "message"), [
    ("cpu,cpu", "repeats a device"),
    ("gpu0", "unknown device"),
    (",", "names no device"),
    ("cuda", "numbered GPUs"),
])
def test_bad_device_lists_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(PlacementError, match=message) as error:
        parse_devices(text)
    assert "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="a machine with several GPUs has them to map")
def test_missing_gpus_are_named() -> None:
    with pytest.raises(PlacementError, match="not visible"):
        parse_devices("cuda:0,cuda:1")
    if not torch.cuda.is_available():
        with pytest.raises(PlacementError, match="found no GPU"):
            parse_devices("auto")


def test_more_devices_than_layers_is_refused() -> None:
    with pytest.raises(PlacementError, match="at most 4 devices"):
        layer_device_map(load_model("tiny").model.config, [f"cuda:{i}" for i in range(5)])


def test_mapped_sparse_model_equals_the_unmapped_one() -> None:
    mapped, plain = load_model("tiny", devices=parse_devices("cpu")), load_model("tiny")
    assert mapped.device == torch.device("cpu")
    inputs = video_prompt(plain.processor, [random_video(1, 8, 112, 140)], "Which colour appears first?")
    logits = []
    for loaded in (mapped, plain):
        sparse = SparseRuntime.attach(loaded.model, AdaSparkConfig(p=0.6, cube=(2, 2, 2)))
        with torch.no_grad():
            logits.append(loaded.model(**inputs).logits)
        rows = sparse.records[0].layer_summary(sparse.num_layers)
        assert any(row["kept_cube_fraction"] < 1 for row in rows) and any(row["ffn_active_fraction"] < 1 for row in rows)
    assert torch.equal(logits[0], logits[1])
