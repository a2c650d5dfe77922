"""``summary.json`` of a run: lmms-eval's scores (``scores``), the benchmarks' official evaluators' scores
recomputed from the run's sample records (``scores_official``), means over those records, the config,
the model, package versions and the git revision (``results.schema.RunSummary``)."""

from __future__ import annotations

import math
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from adaspark_eval.datasets import Benchmark
from adaspark_eval.datasets.scoring import RecordsUnscorable, has_rules, score_records
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.results.schema import RunSummary

PACKAGES = ("adaspark-eval", "lmms_eval", "torch", "transformers", "qwen-vl-utils", "decord")


def build_summary(lm: AdaSparkLMM, benchmarks: Sequence[Benchmark], results: dict[str, dict[str, Any]],
                  limit: int | float | None = None) -> RunSummary:
    """The summary of the samples ``lm`` served in this run.

    Args:
        results: lmms-eval's ``results["results"]`` (task -> ``"<metric>,<filter>"`` -> value).

    ``scores`` holds ``"<benchmark>/<metric>"`` in percent, leaving out metrics no sample fell in (NaN);
    ``scores_official`` the same names under each benchmark's official rule (``datasets.scoring``),
    from the records of the samples served.
    ``flop_reduction`` and ``latency`` are means over the scored samples (errors left out);
    ``flop_reduction`` is ``{}`` until records carry FLOPs.
    """
    records = [lm.store.records[key] for key in dict.fromkeys(lm.served)]
    scored = [r for r in records if r["correct"] is not None]
    return {
        "run": lm.store.folder.name,
        "model": lm.model_name,
        "method": lm.method.name,
        "config": lm.method.describe(lm.config),
        "config_key": lm.config_key,
        "tasks": [b.name for b in benchmarks],
        "scores": scores(benchmarks, results),
        "scores_official": rule_scores(benchmarks, records, "official"),
        "flop_reduction": _means([r["flops"] for r in scored if "flops" in r], ("llm_prefill", "total"), "reduction"),
        "latency": _means([r["latency"] for r in scored if "latency" in r], ("prefill_s", "total_s")),
        "n_samples": len(records),
        "n_errors": sum(r["error"] is not None for r in records),
        "versions": versions(),
        "git_revision": git_revision(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "video": asdict(lm.video),
        "dtype": lm.dtype,
        "limit": limit,
    }


def scores(benchmarks: Sequence[Benchmark], results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``"<benchmark>/<metric>"`` -> percent, for the metrics of each benchmark's lmms-eval task."""
    out = {}
    for benchmark in benchmarks:
        for key, value in results.get(benchmark.lmms_task, {}).items():
            metric, _, filter_name = key.partition(",")
            if metric in benchmark.metrics and filter_name == "none" and not math.isnan(value):
                out[f"{benchmark.name}/{metric}"] = float(value)
    return out


def rule_scores(benchmarks: Sequence[Benchmark], records: Sequence[dict[str, Any]], rule: str) -> dict[str, float]:
    """``"<benchmark>/<metric>"`` -> percent under scoring ``rule``, recomputed from ``records`` (a failed
    sample answers the empty string). A benchmark without rules, without records, or whose records lack a
    field the rule reads (resumed from an older harness) is left out rather than failing the run."""
    out = {}
    for benchmark in benchmarks:
        chosen = [record for record in records if record["task"] == benchmark.name]
        if not chosen or not has_rules(benchmark.name):
            continue
        try:
            values = score_records(benchmark.name, chosen, rule)
        except RecordsUnscorable:
            continue
        out.update({f"{benchmark.name}/{metric}": value for metric, value in values.items()})
    return out


def _means(rows: list[dict[str, Any]], keys: tuple[str, ...], inner: str | None = None) -> dict[str, float]:
    """Mean of ``row[key]`` (or ``row[key][inner]``) per key over ``rows``; ``{}`` without rows."""
    if not rows:
        return {}
    return {key: sum(float(row[key][inner] if inner else row[key]) for row in rows) / len(rows) for key in keys}


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape results, and Python's."""
    out = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def git_revision() -> str:
    """HEAD of the checkout this package runs from (``-dirty`` with uncommitted changes to tracked
    files), or ``unknown`` outside a git checkout."""
    repo = str(Path(__file__).resolve().parents[2])
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")
