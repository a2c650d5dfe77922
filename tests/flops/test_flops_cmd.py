"""``adaspark-eval flops``: the JSON object of a sparse tiny run on a video file, the dense analytic count of a
known config, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.data.video import write_video
from adaspark_eval.flops.sample import COMPONENTS

KEYS = {"model", "frames", "video_grid_thw", "tokens", "config", "components", "llm_prefill", "total"}


def run(*args: str):
    return CliRunner().invoke(app, ["flops", *args])


def test_json_of_a_sparse_tiny_run_on_a_video(tmp_path):
    video = tmp_path / "clip.mp4"
    write_video(video, np.random.default_rng(2).integers(0, 256, (8, 112, 168, 3), dtype=np.uint8), fps=4)
    result = run("--video", str(video), "--frames", "8", "--p", "0.5", "--cube", "2x2x2", "--new-tokens", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == KEYS and list(report["components"]) == list(COMPONENTS)
    assert report["tokens"]["visual"] == 4 * 4 * 6 and report["tokens"]["decode_steps"] == 1
    assert report["config"]["p"] == 0.5
    assert 0 < report["llm_prefill"]["reduction"] < 1
    parts = report["components"].values()
    assert report["total"]["actual"] == sum(c["actual"] for c in parts)
    assert report["total"]["dense"] == sum(c["dense"] for c in parts)


def test_known_config_is_the_dense_formula():
    result = run("--model", "qwen2.5-vl-7b", "--frames", "64", "--size", "448x448", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == KEYS and report["config"] is None
    assert report["video_grid_thw"] == [[32, 32, 32]] and report["tokens"]["visual"] == 8192
    assert report["llm_prefill"]["actual"] == report["llm_prefill"]["dense"] and report["total"]["reduction"] == 0
    table = run("--model", "qwen2.5-vl-7b", "--frames", "64", "--size", "448x448").output
    assert "1 multiply-add = 2 FLOPs" in table and "llm_prefill" in table


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "qwen2.5-vl-7b", "--p", "0.5"], "dense analytic count"),
    (["--model", "qwen2.5-vl-7b", "--size", "448"], "is not HxW"),
    (["--model", "qwen2.5-vl-7b", "--size", "448x448", "--video", "x.mp4"], "pass one"),
    (["--model", "qwen2.5-vl-7b", "--frames", "1"], "2 or more"),
])
def test_bad_input_is_a_one_line_error(args, message):
    result = run(*args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
