"""Samples prepared ahead in worker processes and the persistent frame cache, end to end through lmms-eval
on the tiny model: records (latencies aside) do not depend on the number of workers or on the cache (off,
cold, warm); a worker killed while preparing a sample is replaced and the sample retried, or recorded as an
error when it dies again, and the run finishes with every sample recorded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.frame_cache import FrameCache
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.datasets import parse_tasks
from adaspark_eval.evaluation.runner import evaluate
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.lmms.prepare import KILL_ENV
from adaspark_eval.results.store import RunStore, read_samples

TASKS = parse_tasks("videomme,videoniah")
FAST = "max_new_tokens=2"
STAGES = ("decode_s", "cache_s", "processor_s", "wait_s")


def _lm(output: Path, workers: int, cache: FrameCache | None) -> AdaSparkLMM:
    return AdaSparkLMM(pretrained="tiny", config=AdaSparkConfig(p=0.7, cube=(2, 2, 2)), device="cpu", dtype="float32",
                       video=VideoSettings(min_pixels=3136, max_pixels=15680), output=output, workers=workers,
                       frame_cache=cache)


def _records(folder: Path) -> dict[tuple, dict]:
    """Records by sample, latencies dropped."""
    records = read_samples(folder / "samples.jsonl")
    assert len({(r["task"], r["sample_id"]) for r in records}) == len(records)  # none written twice
    return {(r["task"], r["sample_id"]): {k: v for k, v in r.items() if k != "latency"} for r in records}


def test_records_do_not_depend_on_workers_or_the_cache(benchmark_root: Path, tmp_path: Path,
                                                       one_torch_thread) -> None:
    serial = _lm(tmp_path / "serial", workers=0, cache=None)
    evaluate(serial, TASKS, benchmark_root, limit=4, gen_kwargs=FAST)
    cache = FrameCache(tmp_path / "frames")
    ahead = _lm(tmp_path / "cold", workers=2, cache=cache)
    ahead.preparer.wait_started(120)  # every sample prepared by a worker (none by the model's process)
    evaluate(ahead, TASKS, benchmark_root, limit=4, gen_kwargs=FAST)
    cold_entries = cache.info().entries
    ahead.store = RunStore(tmp_path / "warm")
    evaluate(ahead, TASKS, benchmark_root, limit=4, gen_kwargs=FAST)
    expected = _records(tmp_path / "serial")
    assert len(expected) == 6 and all(r["error"] is None for r in expected.values())
    assert _records(tmp_path / "cold") == expected
    assert _records(tmp_path / "warm") == expected
    assert cold_entries == cache.info().entries > 0  # the warm run decoded nothing new
    warm = read_samples(tmp_path / "warm" / "samples.jsonl")
    assert all(set(STAGES) <= set(r["latency"]) and r["latency"]["decode_s"] == 0.0 for r in warm)
    assert ahead.preparer.stats.deaths == 0 and ahead.preparer.stats.done == 12 and ahead.preparer.stats.helped == 0
    ahead.close()


@pytest.mark.parametrize("once", [True, False], ids=["retried", "died-twice"])
def test_a_killed_worker_costs_at_most_its_sample(benchmark_root: Path, tmp_path: Path, monkeypatch, once: bool,
                                                  one_torch_thread) -> None:
    victim = sorted((benchmark_root / "videomme").rglob("*.mp4"))[0].name  # one question of two reads it
    marker = tmp_path / "kill"
    marker.write_text(f"{victim}\n{'once' if once else 'always'}\n")
    monkeypatch.setenv(KILL_ENV, str(marker))
    lm = _lm(tmp_path / "run", workers=2, cache=None)
    lm.preparer.wait_started(120)
    summary = evaluate(lm, parse_tasks("videomme"), benchmark_root, limit=2, gen_kwargs=FAST)
    records = _records(tmp_path / "run")
    assert len(records) == 2 and summary["n_samples"] == 2
    failed = [r for r in records.values() if r["error"] is not None]
    if once:
        assert not failed and lm.preparer.stats.retries >= 1 and not marker.exists()
    else:
        assert len(failed) == 1 and "worker died twice" in failed[0]["error"]  # the other sample is answered
        assert lm.preparer.stats.deaths == 2
    lm.close()
