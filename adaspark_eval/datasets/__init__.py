"""The benchmarks the harness evaluates, read from a local data root (never the network).

``get_benchmark("videomme")`` -> its ``Benchmark``: layout, docs, judgement, aggregation. The
lmms-eval tasks under ``tasks/`` are thin YAML over these.
"""

from __future__ import annotations

from adaspark_eval.datasets.base import (DATA_ROOT_ENV, AnnotationInvalid, Benchmark, DatasetMissing, Judgement,
                                         data_root)
from adaspark_eval.datasets.mlvu import MLVUDev
from adaspark_eval.datasets.videomme import VideoMME
from adaspark_eval.datasets.videoniah import VideoNIAH

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (VideoMME(), MLVUDev(), VideoNIAH())}


class UnknownTask(ValueError):
    """A task name the harness does not know; the message lists the known ones."""


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (its own name or its lmms-eval task name)."""
    for benchmark in BENCHMARKS.values():
        if name in (benchmark.name, benchmark.lmms_task):
            return benchmark
    raise UnknownTask(f"unknown task {name!r}: choose from {', '.join(BENCHMARKS)}")


def parse_tasks(text: str) -> list[Benchmark]:
    """``"videomme,mlvu_dev"`` -> their benchmarks, in order, without repeats."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UnknownTask(f"no task given: pass --task with one or more of {', '.join(BENCHMARKS)}")
    return [get_benchmark(name) for name in dict.fromkeys(names)]


__all__ = ["BENCHMARKS", "DATA_ROOT_ENV", "AnnotationInvalid", "Benchmark", "DatasetMissing", "Judgement",
           "UnknownTask", "data_root", "get_benchmark", "parse_tasks"]
