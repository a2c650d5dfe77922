"""Sweeps: a grid of AdaSpark configs evaluated with one loaded model, one run folder per point.

The grid comes from knob values given as comma-separated lists (``p="0.6,0.8,1.0"``, ``cube="2,4"``):
each list is an axis, points are their product. Samples are answered sample by sample across all
points, so each video is decoded and passed through the vision encoder once per sweep (``SampleMemo``);
lmms-eval then scores every point from its run folder (all samples already there: nothing is
recomputed). A sweep killed at any moment resumes from the run folders.
"""

from __future__ import annotations

import itertools
import time
from contextlib import nullcontext
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaspark_eval.datasets import DATA_ROOT_ENV, Benchmark
from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.evaluation.runner import environment, evaluate
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.lmms.task import task_manager
from adaspark_eval.methods import Method, method_grid
from adaspark_eval.results.schema import RunSummary
from adaspark_eval.results.store import RunStore, write_json_atomic


@dataclass(frozen=True)
class SweepPoint:
    """One config of a grid; ``name`` lists the swept knobs' and method settings' values (``p=0.8,cube=2x2x2``);
    ``method``: the point's method (None: the one the model was loaded with)."""

    name: str
    config: AdaSparkConfig
    method: Method | None = None  # a point of a method-setting list (None: the model's method)


def grid(knobs: dict[str, str], base: AdaSparkConfig | None = None) -> list[SweepPoint]:
    """The points of ``knobs`` (knob -> value or comma-separated values) over ``base``.

    ``dense_layers`` takes ``;`` between layers (its values are lists themselves), e.g. ``"0;1,2;3"``.
    Raises ``ConfigError`` for a bad value, naming the knob.
    """
    base = base or AdaSparkConfig()
    axes = {name: [v.strip().replace(";", ",") if name == "dense_layers" else v.strip()
                   for v in value.split(",")] for name, value in knobs.items()}
    swept = [name for name, values in axes.items() if len(values) > 1]
    points = []
    for values in itertools.product(*axes.values()):
        chosen = dict(zip(axes, values))
        config = base.replace(**chosen)
        name = ",".join(f"{k}={chosen[k]}" for k in swept) or "default"
        points.append(SweepPoint(name=name, config=config))
    return points


def with_methods(points: Sequence[SweepPoint], method: str, settings: dict[str, Any]) -> list[SweepPoint]:
    """``points`` times the methods ``method`` with ``settings`` (setting -> value or comma-separated values, each
    list an axis, as knobs are: ``methods.method_grid``); each point carries its method and names the swept
    settings after the knobs. Raises ``ConfigError`` for a bad setting, naming it, and for a list of a setting
    that changes how videos are read (a sweep shares decoded videos between its points)."""
    methods = method_grid(method, settings)
    swept = [name for name, value in settings.items() if len(str(value).split(",")) > 1]
    peer = methods[0][1]
    if swept and (type(peer).video is not Method.video or type(peer).frames_for is not Method.frames_for):
        raise ConfigError(f"method {method} reads videos by its settings, and a sweep shares decoded videos "
                          f"between its points: evaluate each value of {', '.join(swept)} with `adaspark-eval run`")
    combined = []
    for label, peer in methods:
        for point in points:
            name = ",".join(part for part in (point.name if point.name != "default" else "", label) if part)
            combined.append(SweepPoint(name=name or "default", config=point.config, method=peer))
    return combined


def point_folder(root: Path, point: SweepPoint, config_key: str) -> Path:
    """``root/<point name>-<config key>``: readable, and distinct for every config."""
    safe = "".join(c if c.isalnum() or c in ".=-" else "_" for c in point.name)
    return root / f"{safe}-{config_key}"


def sweep(lm: AdaSparkLMM, benchmarks: Sequence[Benchmark], root: Path, points: Sequence[SweepPoint], out: Path,
          limit: int | float | None = None, share: bool = True) -> list[RunSummary]:
    """Evaluate every point; returns their summaries (also in each point's ``summary.json``) and writes
    ``out/sweep.json`` (points, folders, shared-work counts, seconds)."""
    stores, keys = [], []
    for point in points:
        lm.configure(point.config, point.method)
        stores.append(RunStore(point_folder(out, point, lm.config_key)))
        keys.append(lm.config_key)
    started = time.perf_counter()
    requests = _requests(lm, benchmarks, root, limit)

    def pending(request: Any) -> bool:  # prepared once if any point still needs it
        return any(lm.pending(request, key, store) for key, store in zip(keys, stores))

    with environment(DATA_ROOT_ENV, str(root)), (
            lm.shared.vision_encoder(lm.loaded.model.model) if share else nullcontext()):
        for request, prepared in lm.prepared(requests, pending, desc=f"sweep ({len(points)} points)"):
            lm.shared.next_sample()
            for index, (point, store) in enumerate(zip(points, stores)):
                lm.configure(point.config, point.method)
                lm.store = store
                lm.answer_request(request, prepared if share or index == 0 else None)  # --no-share: decode again
                if not share:
                    lm.shared.next_sample()
    answered = time.perf_counter() - started
    summaries = []
    for point, store in zip(points, stores):
        lm.configure(point.config, point.method)
        lm.store = store
        summaries.append(evaluate(lm, benchmarks, root, limit=limit))
    write_json_atomic(out / "sweep.json", {
        "points": [{"name": p.name, "config": p.config.to_dict(), "folder": str(s.folder),
                    **({"method": {"name": p.method.name, **p.method.settings()}} if p.method else {})}
                   for p, s in zip(points, stores)],
        "tasks": [b.name for b in benchmarks], "limit": limit, "share": share,
        "shared_work": {"computed": lm.shared.computed, "reused": lm.shared.reused},
        "answer_seconds": round(answered, 3), "total_seconds": round(time.perf_counter() - started, 3),
    })
    return summaries


def _requests(lm: AdaSparkLMM, benchmarks: Sequence[Benchmark], root: Path, limit: int | float | None) -> list:
    """lmms-eval's requests for ``benchmarks``, built as its evaluator builds them (``lm.task_dict`` set)."""
    from lmms_eval.evaluator_utils import get_sample_size
    from lmms_eval.tasks import get_task_dict

    with environment(DATA_ROOT_ENV, str(root)):
        tasks = get_task_dict([b.lmms_task for b in benchmarks], task_manager(), "chat")
    requests = []
    for name, task in tasks.items():
        lm.task_dict[name] = task.dataset
        task.build_all_requests(limit=get_sample_size(task, limit))
        requests.extend(task.instances)
    return requests
