"""Annotation video paths stay inside their benchmark folder: a path through ``..``, a symlink out or an
absolute path is listed by ``data check`` and is an error record in ``run`` (the file is never opened),
unless ``--allow-outside-root``; a 1-frame video is reported by ``data check`` with its real cause."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.data.video import write_video
from adaspark_eval.results.store import read_samples

FAST = ["--model", "tiny", "--device", "cpu", "--dtype", "float32", "--min-pixels", "3136", "--max-pixels", "15680",
        "--workers", "0", "--no-frame-cache"]


def _niah_with_outside_paths(benchmark_root: Path, tmp_path: Path) -> Path:
    """A copy of the VideoNIAH fixture whose first question (4 tries) reads a video outside the folder by
    ``..``, and whose second reads one through a symlink out."""
    root = tmp_path / "data"
    shutil.copytree(benchmark_root / "videoniah", root / "videoniah")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    rows = json.loads((root / "videoniah" / "videoniah-4try.json").read_text())
    first, second = rows[0]["video"], rows[4]["video"]
    shutil.copy(root / "videoniah" / first, outside / "a.mp4")
    shutil.copy(root / "videoniah" / second, outside / "b.mp4")
    (root / "videoniah" / "videos" / "link.mp4").symlink_to(outside / "b.mp4")
    for row in rows:
        row["video"] = {first: "../../elsewhere/a.mp4", second: "videos/link.mp4"}[row["video"]]
    (root / "videoniah" / "videoniah-4try.json").write_text(json.dumps(rows))
    return root


def test_data_check_lists_videos_outside_the_folder(benchmark_root: Path, tmp_path: Path) -> None:
    root = _niah_with_outside_paths(benchmark_root, tmp_path)
    result = CliRunner().invoke(app, ["data", "check", "--task", "videoniah", "--root", str(root)])
    assert result.exit_code == 1
    assert "2 videos outside the benchmark folder (fix their paths, or pass --allow-outside-root)" in result.output
    assert "elsewhere/a.mp4, outside the benchmark folder" in result.output
    allowed = CliRunner().invoke(app, ["data", "check", "--task", "videoniah", "--root", str(root),
                                       "--allow-outside-root"])
    assert allowed.exit_code == 0, allowed.output


def test_run_records_an_error_for_each_sample_reading_outside(benchmark_root: Path, tmp_path: Path,
                                                              one_torch_thread) -> None:
    root = _niah_with_outside_paths(benchmark_root, tmp_path)
    output = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--task", "videoniah", "--data-root", str(root), "--output",
                                      str(output), *FAST])
    assert result.exit_code == 0, result.output
    records = read_samples(output / "samples.jsonl")
    assert len(records) == 8 and all("outside the benchmark folder" in r["error"] for r in records)


def test_data_check_names_a_one_frame_video(benchmark_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(benchmark_root / "videoniah", root / "videoniah")
    video = sorted((root / "videoniah" / "videos").glob("*.mp4"))[0]
    write_video(video, [np.full((64, 64, 3), 90, np.uint8)], fps=1)
    result = CliRunner().invoke(app, ["data", "check", "--task", "videoniah", "--root", str(root)])
    assert result.exit_code == 1
    assert f"{video} has 1 frame: at least 2 are needed" in result.output
