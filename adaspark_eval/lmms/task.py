"""The lmms-eval side of the benchmarks: a task class that reads docs from the local data root, and the
functions the task YAMLs under ``tasks/`` name (visual, results, aggregation).

Each YAML says ``class: !function adaspark_eval.lmms.task.LocalVideoTask``; lmms-eval builds the task
from the rest of the YAML as usual, and ``download`` reads ``$ADASPARK_DATA_ROOT/<benchmark>`` instead
of the Hugging Face Hub. The benchmark is the one whose ``lmms_task`` is the YAML's ``task``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import datasets
from lmms_eval.api.task import ConfigurableMessagesTask

from adaspark_eval.datasets import get_benchmark
from adaspark_eval.datasets.base import DatasetMissing, data_root

TASKS_ENV = "ADASPARK_TASKS_DIR"


def tasks_dir() -> Path:
    """The folder of the task YAMLs: ``$ADASPARK_TASKS_DIR``, else the package's ``tasks`` (in a source
    checkout a link to the top-level ``tasks/``; in a wheel, the YAMLs themselves)."""
    folder = Path(os.environ.get(TASKS_ENV) or Path(__file__).parents[1] / "tasks")
    if not folder.is_dir():
        raise FileNotFoundError(f"task configs not found at {folder}: reinstall the package (pip install -e .) "
                                f"or set {TASKS_ENV} to the tasks/ folder of its source checkout")
    return folder


def task_manager() -> Any:
    """lmms-eval's ``TaskManager`` over this package's task YAMLs only (its built-in tasks read the Hub)."""
    from lmms_eval.tasks import TaskManager

    return TaskManager("WARNING", include_path=str(tasks_dir()), include_defaults=False)


class LocalVideoTask(ConfigurableMessagesTask):
    """A chat-style lmms-eval task whose docs come from ``Benchmark.read_docs`` of the local data root."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.benchmark = get_benchmark(config["task"])
        super().__init__(config={k: v for k, v in config.items() if k != "class"})

    def download(self, dataset_kwargs: dict[str, Any] | None = None) -> None:
        split = self.config.test_split
        try:
            docs = datasets.Dataset.from_list(self.benchmark.read_docs(data_root()))
        except DatasetMissing as error:  # lmms-eval's CLI logs an exception and exits 0: stop it with the fix
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        if self.config.process_docs is not None:
            docs = self.config.process_docs(docs)
        self.dataset = datasets.DatasetDict({split: docs})
        self.dataset_no_image = self.dataset


def doc_to_visual(doc: dict[str, Any]) -> list[str]:
    """The doc's video; a missing file is left for the model to report as that sample's error."""
    return [doc["video_path"]]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict[str, Any]]:
    """Judge the prediction; the same per-sample item goes to every metric, tagged with its name."""
    benchmark = get_benchmark(doc["benchmark"])
    item = benchmark.judge(doc, results[0]).item
    return {metric: {**item, "benchmark": benchmark.name, "metric": metric} for metric in benchmark.metrics}


def aggregate(items: list[dict[str, Any]]) -> float:
    """Every metric's aggregation: the benchmark's score for the metric its items are tagged with."""
    benchmark = get_benchmark(items[0]["benchmark"])
    return benchmark.aggregate(items[0]["metric"], items)
