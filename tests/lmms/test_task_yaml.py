"""The task YAMLs under ``tasks/`` and the benchmark adapters name the same metrics: ``Benchmark.metrics``
is the one source (``process_results`` tags items with it), and each YAML's ``metric_list`` must list
exactly those names, in that order, each aggregated by ``adaspark_eval.lmms.task.aggregate``."""

from __future__ import annotations

import yaml

from adaspark_eval.datasets import BENCHMARKS
from adaspark_eval.lmms.task import tasks_dir


class _Tags(yaml.SafeLoader):
    """Reads lmms-eval's ``!function`` tags as their text."""


_Tags.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def _task_configs() -> dict[str, dict]:
    configs = {}
    for path in sorted(tasks_dir().glob("*/*.yaml")):
        config = yaml.load(path.read_text(), Loader=_Tags)
        configs[config["task"]] = config
    return configs


def test_every_benchmark_has_one_task_yaml_with_its_metrics() -> None:
    configs = _task_configs()
    assert sorted(configs) == sorted(b.lmms_task for b in BENCHMARKS.values())
    for benchmark in BENCHMARKS.values():
        listed = configs[benchmark.lmms_task]["metric_list"]
        assert [m["metric"] for m in listed] == list(benchmark.metrics), benchmark.name
        assert {m["aggregation"] for m in listed} == {"!function adaspark_eval.lmms.task.aggregate"}
        assert all(m["higher_is_better"] is True for m in listed)
