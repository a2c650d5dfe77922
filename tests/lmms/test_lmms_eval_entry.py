"""lmms-eval, started the ordinary way, finds the ``adaspark`` model (entry point) and the three local
tasks (``--include_path``), runs them on the fixtures with the tiny model and scores them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adaspark_eval.datasets import BENCHMARKS
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.lmms.task import tasks_dir
from adaspark_eval.results.store import read_samples


def test_registry_resolves_adaspark_to_the_chat_class() -> None:
    from lmms_eval.models import get_model

    assert get_model("adaspark") is AdaSparkLMM


def test_bad_model_arg_is_one_line_naming_the_args() -> None:
    with pytest.raises(ValueError, match=r"unknown adaspark model arg\(s\) \['frames'\]: pass pretrained"):
        AdaSparkLMM.from_model_args({"pretrained": "tiny", "frames": 8})


def test_python_m_lmms_eval(benchmark_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "run"
    tasks = ",".join(b.lmms_task for b in BENCHMARKS.values())
    model_args = ("pretrained=tiny,p=0.8,cube=2x2x2,device=cpu,dtype=float32,min_pixels=3136,max_pixels=15680,"
                  f"output={output}")
    command = [sys.executable, "-m", "lmms_eval", "--model", "adaspark", "--model_args", model_args, "--tasks", tasks,
               "--include_path", str(tasks_dir()), "--limit", "1", "--gen_kwargs", "max_new_tokens=2"]
    env = {**os.environ, "ADASPARK_DATA_ROOT": str(benchmark_root), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for line in ("|videomme_local ", "|mlvu_dev_local ", "|videoniah_local"):
        assert line in table
    assert "m_avg" in table and "overall" in table
    records = read_samples(output / "samples.jsonl")
    assert sorted(r["task"] for r in records) == sorted(BENCHMARKS)
    for record in records:
        assert record["error"] is None and isinstance(record["correct"], bool)
        assert record["flops"]["llm_prefill"]["dense"] > 0 and len(record["layers"]) == 4


def test_python_m_lmms_eval_without_a_data_root_exits_2_naming_the_fix(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ADASPARK_DATA_ROOT"}
    command = [sys.executable, "-m", "lmms_eval", "--model", "adaspark", "--model_args", "pretrained=tiny,device=cpu",
               "--tasks", "videoniah_local", "--include_path", str(tasks_dir()), "--limit", "1"]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert "error: no dataset root given: pass --data-root DIR or set ADASPARK_DATA_ROOT=DIR" in result.stderr
