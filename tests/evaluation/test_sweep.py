"""Sweeps: the grid, work shared across points, and resuming after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaspark_eval.datasets import get_benchmark
from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.evaluation.runner import evaluate
from adaspark_eval.evaluation.sweep import grid, sweep, with_methods
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.results.store import RunStore, read_samples

FAST = {"pretrained": "tiny", "device": "cpu", "dtype": "float32",
        "video": VideoSettings(min_pixels=3136, max_pixels=15680)}


def test_grid_is_the_product_of_the_listed_knobs():
    points = grid({"p": "0.6,0.8", "cube": "2x2x2,4", "compensation": "none"})
    assert [p.name for p in points] == ["p=0.6,cube=2x2x2", "p=0.6,cube=4", "p=0.8,cube=2x2x2", "p=0.8,cube=4"]
    assert points[1].config == AdaSparkConfig(p=0.6, cube=(4, 4, 4), compensation="none")
    assert grid({"dense_layers": "0;1,2"})[0].config.dense_layers == (0, 1)
    assert [p.name for p in grid({})] == ["default"]
    with pytest.raises(ConfigError, match="^p="):
        grid({"p": "0.5,1.5"})


def test_method_settings_are_axes_of_the_grid():
    points = with_methods(grid({"cube": "2,4"}), "xattention", {"xattn_threshold": "0.5,0.9", "xattn_stride": 8})
    assert [p.name for p in points] == ["cube=2,xattn_threshold=0.5", "cube=4,xattn_threshold=0.5",
                                        "cube=2,xattn_threshold=0.9", "cube=4,xattn_threshold=0.9"]
    assert points[2].method.settings() == {"xattn_threshold": 0.9, "xattn_stride": 8, "xattn_block": 128}
    assert [p.name for p in with_methods(grid({}), "fastv", {"fastv_keep": 0.5})] == ["default"]
    with pytest.raises(ConfigError, match="evaluate each value of frame_budget with `adaspark-eval run`"):
        with_methods(grid({}), "frames", {"frame_budget": "0.4,0.6"})
    with pytest.raises(ConfigError, match="^xattn_threshold=1.5 is outside"):
        with_methods(grid({}), "xattention", {"xattn_threshold": "0.5,1.5"})


def _predictions(folder: Path) -> dict[str, tuple]:
    return {r["sample_id"]: (r["prediction"], r["correct"]) for r in read_samples(folder / "samples.jsonl")}


def test_sweep_decodes_and_encodes_each_video_once_and_matches_single_runs(benchmark_root, tmp_path,
                                                                          one_torch_thread):
    niah = [get_benchmark("videoniah")]
    lm = AdaSparkLMM(output=tmp_path / "unused", **FAST)
    points = grid({"p": "1.0,0.5", "cube": "2"})
    summaries = sweep(lm, niah, benchmark_root, points, tmp_path / "sweep", limit=4)
    assert [s["config"]["p"] for s in summaries] == [1.0, 0.5] and all(s["n_samples"] == 4 for s in summaries)
    assert lm.shared.computed == {"inputs": 4, "get_video_features": 4}
    assert lm.shared.reused == {"inputs": 4, "get_video_features": 4}
    folders = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert len(folders) == 2 and (tmp_path / "sweep" / "sweep.json").exists()
    # the shared sweep answers exactly as a plain run of the same config
    lm.configure(points[1].config)
    lm.store = RunStore(tmp_path / "single")
    evaluate(lm, niah, benchmark_root, limit=4)
    swept = next(f for f in folders if f.name.startswith("p=0.5"))
    assert _predictions(swept) == _predictions(tmp_path / "single")


def _sweep_cli(root: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "adaspark_eval.cli.main", "sweep", "--task", "videoniah", "--data-root", str(root),
            "--p", "1.0,0.6", "--cube", "2", "--output", str(out), "--model", "tiny", "--device", "cpu", "--dtype",
            "float32", "--min-pixels", "3136", "--max-pixels", "15680"]


def _records(out: Path) -> dict[str, list[dict]]:
    if not out.exists():
        return {}
    return {folder.name: read_samples(folder / "samples.jsonl") for folder in sorted(out.iterdir()) if folder.is_dir()}


def test_killed_sweep_resumes_to_the_uninterrupted_result(benchmark_root, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_sweep_cli(benchmark_root, tmp_path / "whole"), check=True, env=env, capture_output=True)
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(_sweep_cli(benchmark_root, interrupted), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and sum(len(r) for r in _records(interrupted).values()) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = sum(len(r) for r in _records(interrupted).values())
    assert 0 < before < 16  # killed mid-sweep (2 points x 8 tries)
    subprocess.run(_sweep_cli(benchmark_root, interrupted), check=True, env=env, capture_output=True)
    whole, resumed = _records(tmp_path / "whole"), _records(interrupted)
    assert whole.keys() == resumed.keys()
    for folder in whole:
        ids = [r["sample_id"] for r in resumed[folder]]
        assert len(ids) == len(set(ids)) == 8  # nothing finished was computed again
        key = lambda r: r["sample_id"]  # noqa: E731
        strip = lambda r: {k: v for k, v in r.items() if k != "latency"}  # noqa: E731
        assert [strip(r) for r in sorted(resumed[folder], key=key)] == [strip(r) for r in sorted(whole[folder], key=key)]
