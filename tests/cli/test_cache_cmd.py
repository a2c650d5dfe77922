"""``adaspark-eval cache info|clear``: report and empty the frame cache; a bad folder is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import torch
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.data.frame_cache import FrameCache

METADATA = {"fps": 4.0, "frames_indices": [0, 1], "total_num_frames": 2, "video_backend": "decord"}


def filled(folder: Path, videos: Path, count: int) -> FrameCache:
    cache = FrameCache(folder)
    videos.mkdir(exist_ok=True)
    for i in range(count):
        (videos / f"{i}.mp4").write_bytes(bytes([i]) * 10)
        cache.put(cache.key(videos / f"{i}.mp4", {}), torch.full((2, 3, 4, 4), float(i)), METADATA, 1.0)
    return cache


def test_info_then_clear(tmp_path: Path) -> None:
    cache = filled(tmp_path / "cache", tmp_path / "videos", 2)
    result = CliRunner().invoke(app, ["cache", "info", "--frame-cache", str(cache.folder)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [f"folder: {cache.folder}", "entries: 2"]
    assert lines[2].startswith(f"bytes: {cache.info().bytes} ")
    result = CliRunner().invoke(app, ["cache", "clear", "--frame-cache", str(cache.folder)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"cleared 2 entries from {cache.folder}"
    assert cache.info().entries == 0


def test_default_folder_follows_xdg_cache_home(tmp_path: Path) -> None:
    filled(tmp_path / "adaspark-eval" / "frames", tmp_path / "videos", 1)
    result = CliRunner().invoke(app, ["cache", "info"], env={"XDG_CACHE_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert f"folder: {tmp_path / 'adaspark-eval' / 'frames'}" in result.output and "entries: 1" in result.output


def test_absent_folder_is_empty_and_a_file_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["cache", "info", "--frame-cache", str(tmp_path / "none")])
    assert result.exit_code == 0 and "entries: 0" in result.output
    (tmp_path / "file").write_text("x")
    for command in ("info", "clear"):
        result = CliRunner().invoke(app, ["cache", command, "--frame-cache", str(tmp_path / "file")])
        assert result.exit_code == 2
        assert result.output.strip().count("\n") == 0 and "is not a folder" in result.output
