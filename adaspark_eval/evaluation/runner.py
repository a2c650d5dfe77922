"""Drive lmms-eval programmatically: check the local datasets, evaluate the ``adaspark`` model on the
local-data tasks, write the run folder's ``summary.json`` beside its ``samples.jsonl``.

    checks = check_data(benchmarks, root)          # stops on a missing dataset
    lm = AdaSparkLMM(pretrained="tiny", config=AdaSparkConfig(p=0.8), output=folder)
    summary = evaluate(lm, benchmarks, root, limit=2)
    lm.configure(lm.config.replace(p=0.6))          # next config, same loaded model,
    lm.store = RunStore(other_folder)               # in its own run folder
    summary = evaluate(lm, benchmarks, root, limit=2)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

from adaspark_eval.datasets import DATA_ROOT_ENV, AnnotationInvalid, Benchmark, DatasetMissing
from adaspark_eval.datasets.check import DataCheck, check_dataset
from adaspark_eval.models.parallel import gather_served
from adaspark_eval.evaluation.summary import build_summary
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.lmms.task import task_manager
from adaspark_eval.results.schema import RunSummary
from adaspark_eval.results.store import RunLock


def check_data(benchmarks: Sequence[Benchmark], root: Path) -> list[DataCheck]:
    """Presence check (no decoding) of each benchmark under ``root``, before any model loads.

    Raises:
        AnnotationInvalid: a benchmark's annotation cannot be read, is empty or a row lacks a field the
            scorers read (one line naming the file and the field).
        DatasetMissing: a benchmark's annotation is missing (message: where it goes).
    """
    checks = [check_dataset(benchmark, root, decode=False) for benchmark in benchmarks]
    for check in checks:
        if check.invalid:
            raise AnnotationInvalid(f"{check.benchmark}: {check.problem}")
        if not check.usable:
            raise DatasetMissing(f"{check.benchmark}: {check.problem} (see `adaspark-eval data check --task "
                                 f"{check.benchmark} --root {root}`)")
    return checks


def evaluate(lm: AdaSparkLMM, benchmarks: Sequence[Benchmark], root: Path, limit: int | float | None = None,
             gen_kwargs: str | None = None) -> RunSummary | None:
    """Evaluate ``lm`` (its current config) on ``benchmarks`` from data ``root`` through lmms-eval.

    Args:
        limit: samples per task (lmms-eval's ``--limit``; a fraction below 1 is a share of the task).
        gen_kwargs: lmms-eval's generation override, e.g. ``"max_new_tokens=4"``.

    Returns the summary, also written to ``lm.store`` (``summary.json``); records of every sample are
    in its ``samples.jsonl``. Under a launcher (``models.parallel``) every rank calls it, rank 0
    writes and returns the summary of all ranks' samples, the others return ``None``.
    """
    from lmms_eval.evaluator import simple_evaluate

    with RunLock(lm.store.folder) if lm.rank == 0 else nullcontext():  # one run writes a folder at a time
        lm.served = []
        with environment(DATA_ROOT_ENV, str(root)):
            results = simple_evaluate(model=lm, tasks=[b.lmms_task for b in benchmarks], limit=limit,
                                      gen_kwargs=gen_kwargs, task_manager=task_manager(), log_samples=False,
                                      bootstrap_iters=0, verbosity="WARNING")
        served = gather_served(lm.served)  # every rank has answered its shard once this returns
        if lm.rank != 0:
            return None
        lm.store.merge_ranks()
        lm.served = served
        summary = build_summary(lm, benchmarks, results["results"], limit)
        lm.store.write_summary(summary)
        return summary


@contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    """Set environment variable ``name`` for the block (lmms-eval tasks read the data root from it)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous
