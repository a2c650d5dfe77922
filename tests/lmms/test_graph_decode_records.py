"""``decode=graph`` through lmms-eval on the tiny model: the records of ``decode=generate`` (predictions, tokens,
FLOPs, layers), under its own config key; what it cannot run stops in one line before the model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.datasets import parse_tasks
from adaspark_eval.evaluation.runner import evaluate
from adaspark_eval.lmms.model import AdaSparkLMM, check_decode
from adaspark_eval.methods import make_method
from adaspark_eval.results.store import read_samples


def _records(folder: Path) -> dict[tuple, dict]:
    return {(r["task"], r["sample_id"]): {k: v for k, v in r.items() if k not in ("latency", "config_key")}
            for r in read_samples(folder / "samples.jsonl")}


def test_graph_decode_records_equal_generate(benchmark_root: Path, tmp_path: Path, one_torch_thread) -> None:
    keys = []
    for decode in ("generate", "graph"):
        lm = AdaSparkLMM(pretrained="tiny", config=AdaSparkConfig(fixed_ratio=0.5, cube=(2, 2, 2)), device="cpu",
                         dtype="float32", video=VideoSettings(min_pixels=3136, max_pixels=15680),
                         output=tmp_path / decode, workers=0, frame_cache=None, decode=decode)
        evaluate(lm, parse_tasks("videomme"), benchmark_root, limit=2, gen_kwargs="max_new_tokens=4")
        keys.append(lm.config_key)
    expected = _records(tmp_path / "generate")
    assert len(expected) == 2 and all(r["error"] is None and r["tokens"]["generated"] > 1 for r in expected.values())
    assert _records(tmp_path / "graph") == expected
    assert keys[0] != keys[1]


@pytest.mark.parametrize(("method", "config", "device_map", "fix"), [
    ("fastv", AdaSparkConfig(), None, "method fastv"),
    ("adaspark", AdaSparkConfig(sparse_decode=True), None, "sparse_decode"),
    ("adaspark", AdaSparkConfig(), "cuda:0,cuda:1", "--device-map"),
])
def test_what_graph_decode_cannot_run_is_refused(method, config, device_map, fix) -> None:
    check_decode("graph", make_method("window"), AdaSparkConfig())  # a method dense at decode
    with pytest.raises(ConfigError, match=fix):
        check_decode("graph", make_method(method), config, device_map)
    with pytest.raises(ConfigError, match="generate or graph"):
        check_decode("static", make_method("adaspark"), AdaSparkConfig())
