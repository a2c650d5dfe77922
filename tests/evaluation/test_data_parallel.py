"""Data parallel runs on the CPU (gloo, tiny model): ``run --num-processes 2`` gives the records and
scores of a one-process run, and a 2-process run killed mid-run resumes (here in one process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaspark_eval.datasets.fixtures import write_fixtures
from adaspark_eval.results.store import (
    RunStore,
    read_run_samples,
    read_samples,
    sample_key,
)

FAST = ["--model", "tiny", "--device", "cpu", "--dtype", "float32", "--min-pixels", "3136", "--max-pixels", "15680"]
TASKS = ("mlvu_dev", "videoniah")  # 5 + 8 samples: mlvu_dev's shards are uneven (lmms-eval pads)
SAMPLES = 13


def command(root: Path, output: Path, processes: int) -> list[str]:
    return [sys.executable, "-m", "adaspark_eval.cli.main", "run", "--task", ",".join(TASKS), "--data-root", str(root),
            "--output", str(output), "--num-processes", str(processes), *FAST]


def start(root: Path, output: Path, processes: int) -> subprocess.Popen:
    """The run as its own process group, one torch thread per process."""
    return subprocess.Popen(command(root, output, processes), env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


def without_latency(folder: Path) -> dict:
    return {key: {k: v for k, v in record.items() if k != "latency"} for key, record in read_run_samples(folder).items()}


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A data root of 5 MLVU questions and 2 VideoNIAH ones (4 tries each): enough to kill a run mid-way."""
    root = write_fixtures(tmp_path_factory.mktemp("data"), tasks=("mlvu_dev",), samples=5, seed=0, frames=4)
    return write_fixtures(root, tasks=("videoniah",), samples=2, seed=0, frames=4)


@pytest.fixture(scope="module")
def single(data: Path, tmp_path_factory) -> Path:
    """The one-process run folder."""
    folder = tmp_path_factory.mktemp("single") / "run"
    finish(start(data, folder, 1))
    return folder


def test_two_processes_give_the_records_and_scores_of_one(single: Path, data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    output = finish(start(data, folder, 2))
    assert output.count(f"results: {folder}") == 1  # the overview is printed by rank 0 alone
    assert sorted(p.name for p in folder.iterdir()) == ["samples.jsonl", "summary.json"]
    assert without_latency(folder) == without_latency(single) and len(without_latency(folder)) == SAMPLES
    one, two = summary(single), summary(folder)
    for field in ("scores", "flop_reduction", "n_samples", "n_errors", "config_key", "config"):
        assert two[field] == pytest.approx(one[field]) if field == "flop_reduction" else two[field] == one[field]


def test_killed_two_process_run_resumes(single: Path, data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    process = start(data, folder, 2)
    deadline = time.monotonic() + 240
    while len(read_run_samples(folder)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    killed = read_run_samples(folder)
    assert 3 <= len(killed) < SAMPLES, "the run was not killed mid-run"
    assert sorted(p.name for p in folder.glob("samples*.jsonl")) == ["samples.jsonl", "samples.rank1.jsonl"]

    finish(start(data, folder, 1))  # resumed with another number of processes
    resumed = read_run_samples(folder)
    assert all(resumed[key] == record for key, record in killed.items())  # latency too: not recomputed
    assert sorted(p.name for p in folder.iterdir()) == ["samples.jsonl", "summary.json"]
    assert without_latency(folder) == without_latency(single)
    assert summary(folder)["scores"] == summary(single)["scores"]
    assert summary(folder)["n_samples"] == SAMPLES


def test_rank_files_are_read_and_folded_into_samples_jsonl(tmp_path: Path) -> None:
    def record(sample_id: str, error: str | None) -> dict:
        return {"task": "t", "sample_id": sample_id, "config_key": "k", "prediction": "A", "answer": "A",
                "correct": error is None, "error": error}

    rank0, rank1 = RunStore(tmp_path), RunStore(tmp_path, rank=1)
    rank0.append(record("a", "video missing"))
    rank1.append(record("a", None))  # retried by another rank, then answered
    rank1.append(record("b", None))
    expected = {sample_key(r): r for r in (record("a", None), record("b", None))}
    assert read_run_samples(tmp_path) == expected and RunStore(tmp_path, rank=2).records == expected
    rank0.merge_ranks()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.jsonl"]
    assert rank0.records == expected and {sample_key(r): r for r in read_samples(tmp_path / "samples.jsonl")} == expected
