"""``adaspark-eval data check``: exit 0 on a complete copy, 1 with the missing files listed, 2 on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from adaspark_eval.datasets import get_benchmark
from adaspark_eval.cli.main import app


def test_complete_fixture_checks_ok(benchmark_root: Path) -> None:
    result = CliRunner().invoke(app, ["data", "check", "--task", "videomme,mlvu_dev,videoniah", "--root",
                                      str(benchmark_root)])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[:2] for line in result.output.splitlines()] == [
        ["videomme", " OK"], ["mlvu_dev", " OK"], ["videoniah", " OK"]]


def test_missing_video_is_listed(benchmark_root: Path, tmp_path: Path) -> None:
    shutil.copytree(benchmark_root / "videoniah", tmp_path / "videoniah")
    video = Path(get_benchmark("videoniah").read_docs(tmp_path)[0]["video_path"])
    video.unlink()
    result = CliRunner().invoke(app, ["data", "check", "--task", "videoniah", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "videoniah: INCOMPLETE" in result.output and "1 missing videos" in result.output
    assert str(video) in result.output


def test_missing_dataset_names_the_official_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "check", "--task", "videoniah"],
                                env={"ADASPARK_DATA_ROOT": str(tmp_path)})
    assert result.exit_code == 1
    assert "VNBench-main-4try.json" in result.output and "niah generate" in result.output


def test_unknown_task_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "check", "--task", "egoschema", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown task 'egoschema': choose from videomme, mlvu_dev, videoniah"


def test_annotation_lacking_a_scorer_field_exits_2_in_one_line(benchmark_root: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    shutil.copytree(benchmark_root / "videomme", tmp_path / "videomme")
    annotation = tmp_path / "videomme/videomme/test-00000-of-00001.parquet"
    pq.write_table(pq.read_table(annotation).drop_columns(["duration"]), annotation)
    result = CliRunner().invoke(app, ["data", "check", "--task", "videomme", "--root", str(tmp_path), "--no-decode"])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"videomme: INVALID: {annotation} has no field 'duration'")
