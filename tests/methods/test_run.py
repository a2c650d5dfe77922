"""``run --method``: a peer method through lmms-eval writes records and a summary that reports read as
that method, its FLOPs counted by the same counter; bad method input stops before the model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.reporting.load import load_results
from adaspark_eval.results.store import read_samples

FAST = ["--model", "tiny", "--task", "mlvu_dev", "--limit", "1", "--device", "cpu", "--dtype", "float32",
        "--min-pixels", "3136", "--max-pixels", "15680", "--frames", "4"]


@pytest.mark.parametrize("flags, config, label", [
    (["--method", "window", "--window", "0", "--cube", "1x2x2"], {"cube": [1, 2, 2], "window": 0},
     "window cube=1x2x2 window=0"),
    (["--method", "fastv", "--fastv-layer", "0", "--fastv-keep", "0.25"], {"fastv_layer": 0, "fastv_keep": 0.25},
     "fastv fastv_keep=0.25 fastv_layer=0"),
    (["--method", "frames", "--frame-budget", "0.25"], {"frame_budget": 0.25}, "frames frame_budget=0.25"),
    (["--method", "xattention", "--xattn-threshold", "0.5", "--xattn-block", "8", "--xattn-stride", "4"],
     {"xattn_threshold": 0.5, "xattn_block": 8, "xattn_stride": 4},
     "xattention xattn_block=8 xattn_stride=4 xattn_threshold=0.5"),
    (["--method", "flexprefill", "--flex-gamma", "0.5", "--flex-block", "8", "--flex-min-budget", "1"],
     {"flex_gamma": 0.5, "flex_tau": 0.1, "flex_min_budget": 1, "flex_block": 8},
     "flexprefill flex_block=8 flex_gamma=0.5 flex_min_budget=1"),
    (["--method", "visionzip", "--visionzip-keep", "0.5"], {"visionzip_keep": 0.5, "visionzip_contextual": 0.15625},
     "visionzip visionzip_keep=0.5"),
    (["--method", "dycoke", "--dycoke-merge", "0.5"],
     {"dycoke_window": 4, "dycoke_merge": 0.5, "dycoke_threshold": -1.0, "dycoke_layer": 3, "dycoke_prune": 0.7,
      "dycoke_refresh": 0.9},
     "dycoke dycoke_merge=0.5"),  # settings at their defaults are left out of the label
])
def test_run_a_peer_method(benchmark_root: Path, tmp_path: Path, one_torch_thread, flags, config, label) -> None:
    output = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--data-root", str(benchmark_root), "--output", str(output),
                                      *FAST, *flags])
    assert result.exit_code == 0, result.output
    summary = json.loads((output / "summary.json").read_text())
    method = flags[1]
    assert summary["method"] == method and summary["config"] == config
    assert summary["config_key"].startswith(f"{method}-")
    [record] = read_samples(output / "samples.jsonl")
    assert record["method"] == method and record["error"] is None
    assert 0 < record["flops"]["llm_prefill"]["reduction"] < 1
    assert load_results(output).runs["label"].tolist() == [label]


@pytest.mark.parametrize("flags, message", [
    (["--method", "fastv", "--window", "1"], "error: window is a setting of method window, not fastv"),
    (["--method", "sparse"], "error: unknown method 'sparse': choose from adaspark, dense, topk"),
    (["--method", "topk"], "error: method topk keeps a fixed fraction of cubes and tokens: pass --fixed-ratio R"),
    (["--method", "xattention", "--xattn-threshold", "0.5,0.9"], "error: 2 configs given (xattn_threshold=0.5, "
                                                                  "xattn_threshold=0.9): use `adaspark-eval sweep`"),
])
def test_bad_method_input_is_one_line(benchmark_root: Path, flags, message) -> None:
    result = CliRunner().invoke(app, ["run", "--data-root", str(benchmark_root), *FAST, *flags])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(message), result.output


def test_frames_budget_applies_to_the_frames_each_file_gives(benchmark_root: Path, tmp_path: Path,
                                                             one_torch_thread) -> None:
    """The fixture files have 4 frames: at the default --frames 32 the budget chooses its count from the 4
    the file gives (2 frames), not from 32 (22: the whole file, dense cost); the record says what it read."""
    output = tmp_path / "run"
    flags = [flag for flag in FAST if flag not in ("--frames", "4")]
    result = CliRunner().invoke(app, ["run", "--data-root", str(benchmark_root), "--output", str(output), *flags,
                                      "--method", "frames", "--frame-budget", "0.5", "--workers", "1"])
    assert result.exit_code == 0, result.output
    [record] = read_samples(output / "samples.jsonl")
    assert record["frames_read"] == 2 and record["error"] is None
    assert 0 < record["flops"]["llm_prefill"]["reduction"] < 1


def test_sweep_over_a_method_setting(benchmark_root: Path, tmp_path: Path, one_torch_thread) -> None:
    """A comma-separated method setting is one sweep point each (``run`` refuses it in one line)."""
    output = tmp_path / "sweep"
    result = CliRunner().invoke(app, ["sweep", "--data-root", str(benchmark_root), "--output", str(output), *FAST,
                                      "--method", "visionzip", "--visionzip-keep", "0.5,0.25"])
    assert result.exit_code == 0, result.output
    points = json.loads((output / "sweep.json").read_text())["points"]
    assert [p["name"] for p in points] == ["visionzip_keep=0.5", "visionzip_keep=0.25"]
    reductions = []
    for point in points:
        [record] = read_samples(Path(point["folder"]) / "samples.jsonl")
        assert record["method"] == "visionzip" and record["error"] is None
        reductions.append(record["flops"]["llm_prefill"]["reduction"])
    assert 0 < reductions[0] < reductions[1] < 1
    refused = CliRunner().invoke(app, ["run", "--data-root", str(benchmark_root), *FAST, "--method", "visionzip",
                                       "--visionzip-keep", "0.5,0.25"])
    assert refused.exit_code == 2 and "use `adaspark-eval sweep` for lists of values" in refused.output


def test_sparse_prefill_peers_from_lmms_eval_model_args() -> None:
    from adaspark_eval.lmms.model import AdaSparkLMM

    # values as lmms-eval parses them (numbers), as the model args `method=xattention,xattn_threshold=0.5,...`
    lm = AdaSparkLMM.from_model_args({"pretrained": "tiny", "device": "cpu", "dtype": "float32", "workers": 0,
                                      "method": "flexprefill", "flex_gamma": 0.5, "flex_block": 16})
    try:
        assert lm.method.settings() == {"flex_gamma": 0.5, "flex_tau": 0.1, "flex_min_budget": 1024, "flex_block": 16}
        assert lm.config_key.startswith("flexprefill-") and lm.sparse.rule is not None
    finally:
        lm.close()
