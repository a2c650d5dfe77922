"""``adaspark-eval run --task videomme --model tiny-qwen3-vl --p 0.8`` (and the MoE and Qwen2-VL tiny models) on
the fixtures (the dense Qwen3-VL runs through the same path in ``tests/lmms/test_stock_parity_families.py``):
a record per question, no error, the family's video tokens and a FLOP reduction."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.results.store import read_samples

PIXELS = ["--device", "cpu", "--dtype", "float32", "--min-pixels", "3136", "--max-pixels", "15680"]


@pytest.mark.parametrize("model", ["tiny-qwen3-vl-moe", "tiny-qwen2-vl"])  # tiny-qwen3-vl: test_stock_parity_families
def test_run_on_the_fixtures(model: str, benchmark_root: Path, tmp_path: Path, one_torch_thread) -> None:
    output = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--task", "videomme", "--model", model, "--p", "0.8", "--data-root",
                                      str(benchmark_root), "--limit", "1", "--output", str(output), *PIXELS])
    assert result.exit_code == 0, result.output
    [record] = read_samples(output / "samples.jsonl")
    assert record["error"] is None and record["frames_read"] == 4 and record["tokens"]["visual"] > 0
    assert record["prompt"].startswith("<|im_start|>system\nYou are a helpful assistant.")
    assert 0 < record["flops"]["llm_prefill"]["reduction"] < 1


def test_qwen2_5_only_options_stop_for_another_family(benchmark_root: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--task", "videomme", "--model", "tiny-qwen3-vl", "--batched-vision",
                                      "--data-root", str(benchmark_root)])
    assert result.exit_code == 2 and "--batched-vision swaps Qwen2.5-VL's modules" in result.output


def test_graph_decode_stops_for_qwen3_vl(benchmark_root: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--task", "videomme", "--model", "tiny-qwen3-vl-moe", "--decode", "graph",
                                      "--data-root", str(benchmark_root)])
    assert result.exit_code == 2
    assert "--decode graph runs Qwen2.5-VL and Qwen2-VL; tiny-qwen3-vl-moe is a qwen3-vl-moe model" in result.output
