"""``adaspark-eval run``: data check, evaluation through lmms-eval, summary; bad input stops at once."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.results.store import read_samples

FAST_VIDEO = ["--model", "tiny", "--device", "cpu", "--dtype", "float32", "--min-pixels", "3136", "--max-pixels", "15680"]


def test_run_writes_records_and_summary(benchmark_root: Path, tmp_path: Path, one_torch_thread) -> None:
    output = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--task", "mlvu_dev,videoniah", "--data-root", str(benchmark_root),
                                      "--limit", "1", "--output", str(output), "--p", "0.9", "--cube", "2x2x2",
                                      *FAST_VIDEO])
    assert result.exit_code == 0, result.output
    # the overview: one headline table per task, no category breakdowns
    assert result.output.count("| adaspark p=0.9 cube=2x2x2 |") == 2 and f"results: {output}" in result.output
    assert "### mlvu_dev: score" in result.output and "### videoniah: score" in result.output
    assert " by " not in result.output
    summary = json.loads((output / "summary.json").read_text())
    assert summary["config"]["p"] == 0.9 and summary["config"]["cube"] == [2, 2, 2]
    assert summary["tasks"] == ["mlvu_dev", "videoniah"]
    assert sorted(r["task"] for r in read_samples(output / "samples.jsonl")) == ["mlvu_dev", "videoniah"]


def test_unknown_task_stops_at_once(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--task", "videomme,nextqa", "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown task 'nextqa': choose from videomme, mlvu_dev, videoniah"


def test_missing_dataset_stops_at_once_naming_the_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--task", "videomme", "--data-root", str(tmp_path / "none")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "lmms-lab/Video-MME" in lines[0] and "adaspark-eval data check" in lines[0]


def test_no_data_root_names_the_flag_and_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("ADASPARK_DATA_ROOT", raising=False)
    result = CliRunner().invoke(app, ["run", "--task", "videomme"])
    assert result.exit_code == 2 and "--data-root" in result.output and "ADASPARK_DATA_ROOT" in result.output


def test_device_map_run_gives_the_records_of_a_plain_run(benchmark_root: Path, tmp_path: Path,
                                                          one_torch_thread) -> None:
    def records(*flags: str) -> list[dict]:
        output = tmp_path / "-".join(flags or ("plain",))
        result = CliRunner().invoke(app, ["run", "--task", "videoniah", "--data-root", str(benchmark_root), "--limit",
                                          "2", "--output", str(output), "--p", "0.6", *FAST_VIDEO, *flags])
        assert result.exit_code == 0, result.output
        return [{k: v for k, v in r.items() if k != "latency"} for r in read_samples(output / "samples.jsonl")]

    assert records("--device-map", "cpu") == records()


def test_device_map_and_num_processes_are_exclusive(benchmark_root: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--task", "videoniah", "--data-root", str(benchmark_root),
                                      "--device-map", "auto", "--num-processes", "2", *FAST_VIDEO])
    assert result.exit_code == 2 and result.output.strip().endswith("pass one of them")


def test_fused_ops_without_a_gpu_stops_naming_the_fix(benchmark_root: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--task", "videoniah", "--data-root", str(benchmark_root), "--limit", "1",
                                      "--fused-ops", *FAST_VIDEO])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("pass --device cuda or drop --fused-ops")
