"""Run folders: damaged lines of samples.jsonl are named (file, line), never dropped silently; a torn last
line is cut and reported; a folder is locked while a run writes it (a live owner stops a second run, a dead
one's lock is taken over); a bad --output is refused before anything runs."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.results.store import LOCK, RunFolderBusy, RunLock, RunStore, check_writable


def _record(i: int) -> dict:
    return {"task": "videoniah", "sample_id": str(i), "config_key": "k", "prediction": "A", "answer": "A",
            "correct": True, "error": None}


def _write(folder: Path, lines: list[str], end: str = "\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "samples.jsonl"
    path.write_text("\n".join(lines) + end)
    return path


def test_a_damaged_middle_line_is_named_and_its_sample_not_done(tmp_path: Path, caplog) -> None:
    path = _write(tmp_path, [json.dumps(_record(0)), '{"task": "videoniah", "sample_id"', json.dumps(_record(2))])
    with caplog.at_level(logging.WARNING):
        store = RunStore(tmp_path)
    assert sorted(k[1] for k in store.records) == ["0", "2"]
    assert store.problems == [f"{path}:2: damaged line skipped; its sample counts as not done"]
    assert f"{path}:2: damaged line" in caplog.text


def test_a_torn_last_line_is_cut_and_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, [json.dumps(_record(0)), json.dumps(_record(1))[:20]], end="")
    store = RunStore(tmp_path)
    assert list(store.records) == [("videoniah", "0", "k")]
    assert store.problems == [f"{path}:2: torn last line (a run was killed while writing it) cut off; "
                              "its sample is computed again"]
    store.append(_record(1))
    assert len(RunStore(tmp_path).records) == 2 and RunStore(tmp_path).problems == []


def test_a_live_owner_keeps_the_folder(tmp_path: Path, benchmark_root: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK).write_text(json.dumps({"pid": owner.pid, "host": socket.gethostname(), "since": "x"}))
        with pytest.raises(RunFolderBusy, match=f"being written by another run \\(pid {owner.pid} on this machine"):
            RunLock(tmp_path).__enter__()
        result = CliRunner().invoke(app, ["run", "--task", "videoniah", "--model", "tiny", "--device", "cpu",
                                          "--data-root", str(benchmark_root), "--output", str(tmp_path)])
        assert result.exit_code == 2
        assert result.output.startswith("error: ") and "being written by another run" in result.output
        assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "samples.jsonl").exists()
    finally:
        owner.kill()
        owner.wait()


def test_a_dead_owners_lock_is_taken_over_and_released(tmp_path: Path, caplog) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "x"}))
    with caplog.at_level(logging.WARNING):
        with RunLock(tmp_path):
            assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
            with RunLock(tmp_path):  # re-entrant in one process
                pass
            assert (tmp_path / LOCK).exists()
    assert not (tmp_path / LOCK).exists()
    assert f"taking over the lock of process {dead.pid}" in caplog.text


def test_bad_output_folders_are_refused(tmp_path: Path, benchmark_root: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_writable(a_file)
    with pytest.raises(ValueError, match="lies under .*file, which is a file"):
        check_writable(a_file / "run")
    assert check_writable(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    result = CliRunner().invoke(app, ["run", "--task", "videoniah", "--model", "tiny", "--data-root",
                                      str(benchmark_root), "--output", str(a_file / "x")])
    assert result.exit_code == 2 and "which is a file: pass a folder path" in result.output
