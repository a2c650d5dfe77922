"""Read a results tree into pandas: every run folder under a root, as runs, samples, layers and scores.

A run folder is any folder holding ``summary.json`` and ``samples.jsonl`` (``results.store``); a
folder still being written (no summary yet) is not a run. Samples are keyed like the store, by
``(task, sample_id, config_key)``: records of another config than the folder's summary (left by an
earlier config in the same folder) are dropped, and when several folders hold the same key the
newest run (summary ``created``) wins. Scores are keyed ``(config_key, task, metric)`` the same way.

Scores follow a scoring rule (``datasets.scoring``): ``scoring="default"`` (each benchmark's default
rule), ``"lmms"`` or ``"official"`` recompute every benchmark's scores from the records' raw
``prediction``, so any folder can be rescored without a rerun; ``None`` keeps the summaries' ``scores``
as the runs reported them (lmms-eval's). A (config, task) with no records keeps its summary's scores
under that rule (``scores``, or ``scores_official`` for the official rule) when the summary has them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from adaspark_eval.datasets.scoring import has_rules, rule_name, score_records
from adaspark_eval.reporting.labels import config_label, flat_knobs, series_name
from adaspark_eval.results.store import SAMPLES, SUMMARY, read_run_samples

NUMERIC_COLUMNS = ["prefill_flops", "prefill_dense_flops", "prefill_reduction", "total_flops", "total_dense_flops",
                   "total_reduction", "prefill_s", "total_s", "visual_tokens", "tokens"]
SAMPLE_COLUMNS = ["run", "config_key", "method", "task", "sample_id", "correct", "error", "prediction", "parsed",
                  "answer", *NUMERIC_COLUMNS, "record"]


SCORINGS = ("default", "lmms", "official")  # what reports accept; None: the summaries' scores as the runs reported
AS_RUN = "as run"  # the rule label of scores taken from a summary's ``scores`` as they are
SCORE_COLUMNS = ["config_key", "task", "metric", "value", "rule"]

RUN_COLUMNS = ["run", "name", "method", "config_key", "label", "series", "model", "created", "tasks", "n_samples",
               "n_errors"]


class NoRunsError(FileNotFoundError):
    """The results folder holds no run folder."""


@dataclass(frozen=True)
class Results:
    """The tables of one results tree.

    Attributes:
        root: the folder read.
        runs: one row per run folder: ``run`` (path relative to root), ``name``, ``method``,
            ``config_key``, ``label``, ``series``, ``model``, ``created``, ``tasks``, ``n_samples``,
            ``n_errors``, the summary's ``flop_reduction.*`` and ``latency.*``, and one column per knob.
        samples: one row per sample key: ``run``, ``config_key``, ``method``, ``task``, ``sample_id``,
            ``correct`` (nullable boolean), ``error``, ``prediction``, ``parsed``, ``answer``,
            ``prefill_flops`` / ``prefill_dense_flops`` / ``prefill_reduction`` (LLM prefill),
            ``total_flops`` / ``total_dense_flops`` / ``total_reduction`` (FLOPs at 2 per multiply-add,
            reductions as fractions), ``prefill_s``, ``total_s``, ``visual_tokens``, ``tokens``,
            ``category.<key>``, ``niah.<key>`` and ``record`` (the raw dict).
        layers: one row per sample and decoder layer: ``config_key``, ``task``, ``sample_id``, ``layer``,
            ``kept_cube_fraction``, ``ffn_active_fraction``, ``entropy``.
        scores: one row per ``(config_key, task, metric)``, ``value`` in percent, ``rule`` the scoring rule
            it follows (``lmms``, ``official``, ``lenient``, or ``as run``).
        scoring: the scoring asked for (``SCORINGS``, or None: as the runs reported).
        warnings: one line per run folder that could not be read (skipped) and per damaged line of a
            samples file (its sample left out), each naming the file.
    """

    root: Path
    runs: pd.DataFrame
    samples: pd.DataFrame
    layers: pd.DataFrame
    scores: pd.DataFrame
    scoring: str | None = None
    warnings: list[str] = field(default_factory=list)
    model: str | None = None

    def rule(self, task: str) -> str:
        """The rule the scores of ``task`` follow here: e.g. ``lmms``, ``official``, ``lenient``, ``as run``."""
        return task_rule(task, self.scoring, self.model)


def task_rule(task: str, scoring: str | None, model: str | None = None) -> str:
    """The rule ``scoring`` means for ``task`` (``default``: the default for ``model``'s answers,
    ``datasets.scoring.default_rule``): its own name there (``lenient`` for VideoNIAH's ``lmms``), ``as run``
    when ``scoring`` is None or the task has no rules."""
    if scoring is None or not has_rules(task):
        return AS_RUN
    return rule_name(task, None if scoring == "default" else scoring, model)


def find_runs(root: Path) -> list[Path]:
    """Every run folder under ``root`` (``root`` itself included), sorted by path."""
    return sorted(path.parent for path in Path(root).rglob(SUMMARY) if (path.parent / SAMPLES).is_file())


def load_results(root: str | Path, model: str | None = None, scoring: str | None = "default") -> Results:
    """Read every run folder under ``root`` (only those of ``model`` when given), scores under ``scoring``
    (see the module docstring).

    Raises ``NoRunsError`` when there is no run, ``ValueError`` when runs of several models are
    mixed and ``model`` is not given (a report compares configs of one model), or when ``scoring`` is
    not one of ``SCORINGS`` or the records lack a field its rule reads (``RecordsUnscorable``).
    """
    if scoring is not None and scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}: use one of {', '.join(SCORINGS)}")
    root = Path(root)
    warnings: list[str] = []
    summaries = [(folder, summary) for folder in find_runs(root)
                 if (summary := read_summary(folder, warnings)) is not None]
    models = sorted({str(summary.get("model")) for _, summary in summaries})
    if model is not None:
        summaries = [(folder, summary) for folder, summary in summaries if str(summary.get("model")) == model]
    if not summaries:
        found = f" of model {model} (found: {', '.join(models)})" if models else ""
        if warnings:
            found += f" that can be read ({'; '.join(warnings)})"
        raise NoRunsError(
            f"no runs{found} under {root} (a run folder holds {SUMMARY} and {SAMPLES}): pass the folder "
            "that `adaspark-eval run` or `sweep` wrote to with --results, or write runs there first")
    if model is None and len(models) > 1:
        raise ValueError(f"{root} holds runs of several models ({', '.join(models)}): pick one with --model")
    summaries.sort(key=lambda item: (str(item[1].get("created", "")), str(item[0])))
    runs, samples, reported = [], {}, {}
    for folder, summary in summaries:
        run = folder.relative_to(root).as_posix()
        runs.append(_run_row(run, summary))
        key = summary["config_key"]
        for record in read_run_samples(folder, warnings).values():
            if record.get("config_key") == key:
                samples[(record["task"], str(record["sample_id"]), key)] = _sample_row(run, summary, record)
        for scores in ("scores", "scores_official"):
            for name, value in summary.get(scores, {}).items():
                task, _, metric = name.partition("/")
                reported.setdefault((key, task, scores), {})[metric] = value
    sample_rows = list(samples.values())
    model = model or models[0]
    return Results(
        root=root,
        runs=pd.DataFrame(runs),
        samples=_samples_frame(sample_rows),
        layers=_layers_frame(sample_rows),
        scores=_scores_frame(sample_rows, reported, scoring, model),
        scoring=scoring,
        warnings=warnings,
        model=model,
    )


REQUIRED_SUMMARY_FIELDS = ("config_key", "model", "config")


def read_summary(folder: Path, warnings: list[str]) -> dict[str, Any] | None:
    """The summary of run ``folder``, or None (and one line in ``warnings`` naming the file and why) when it
    cannot be read or lacks what a report needs."""
    path = folder / SUMMARY
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        warnings.append(f"{path} cannot be read ({str(error).splitlines()[0][:80]}): run folder skipped")
        return None
    lacking = [name for name in REQUIRED_SUMMARY_FIELDS if not isinstance(summary, dict) or name not in summary]
    if lacking:
        warnings.append(f"{path} lacks {', '.join(lacking)}: run folder skipped (rerun it to rewrite its summary)")
        return None
    return summary


def _scores_frame(rows: list[dict[str, Any]], reported: dict[tuple[str, str, str], dict[str, float]],
                  scoring: str | None, model: str | None) -> pd.DataFrame:
    """One row per (config_key, task, metric) under ``scoring``: recomputed from the records of each
    (config_key, task) with records, else the newest summary's scores under that rule."""
    records: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if scoring is not None:
        for row in rows:
            records.setdefault((row["config_key"], row["task"]), []).append(row["record"])
    groups = dict.fromkeys([*records, *((key, task) for key, task, _ in reported)])
    out = []
    for key, task in groups:
        rule = task_rule(task, scoring, model)
        if (key, task) in records and rule != AS_RUN:
            values = score_records(task, records[(key, task)], rule)
        else:
            values = reported.get((key, task, "scores_official" if rule == "official" else "scores"), {})
        out += [{"config_key": key, "task": task, "metric": m, "value": v, "rule": rule} for m, v in values.items()]
    return pd.DataFrame(out, columns=SCORE_COLUMNS)


def _run_row(run: str, summary: dict[str, Any]) -> dict[str, Any]:
    knobs = flat_knobs(summary.get("config", {}))
    method = summary.get("method", "adaspark")
    row: dict[str, Any] = {
        "run": run,
        "name": summary.get("run", run),
        "method": method,
        "config_key": summary["config_key"],
        "label": config_label(method, knobs),
        "series": series_name(method, knobs),
        "model": summary.get("model"),
        "created": summary.get("created"),
        "tasks": ",".join(summary.get("tasks", [])),
        "n_samples": summary.get("n_samples"),
        "n_errors": summary.get("n_errors"),
        "frames": (summary.get("video") or {}).get("max_num_frames"),
        "fps": (summary.get("video") or {}).get("fps"),
        **{f"flop_reduction.{k}": v for k, v in summary.get("flop_reduction", {}).items()},
        **{f"latency.{k}": v for k, v in summary.get("latency", {}).items()},
    }
    return {**row, **{name: value for name, value in knobs.items() if name not in row}}


def _sample_row(run: str, summary: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    flops = record.get("flops") or {}
    prefill, total = flops.get("llm_prefill") or {}, flops.get("total") or {}
    latency, tokens = record.get("latency") or {}, record.get("tokens") or {}
    return {
        "run": run,
        "config_key": record["config_key"],
        "method": summary.get("method", record.get("method")),
        "task": record["task"],
        "sample_id": str(record["sample_id"]),
        "correct": record.get("correct"),
        "error": record.get("error"),
        "prediction": record.get("prediction"),
        "parsed": record.get("parsed"),
        "answer": record.get("answer"),
        "prefill_flops": prefill.get("actual"),
        "prefill_dense_flops": prefill.get("dense"),
        "prefill_reduction": prefill.get("reduction"),
        "total_flops": total.get("actual"),
        "total_dense_flops": total.get("dense"),
        "total_reduction": total.get("reduction"),
        "prefill_s": latency.get("prefill_s"),
        "total_s": latency.get("total_s"),
        "visual_tokens": tokens.get("visual"),
        "tokens": tokens.get("total"),
        **{f"category.{k}": v for k, v in (record.get("category") or {}).items()},
        **{f"niah.{k}": v for k, v in (record.get("niah") or {}).items()},
        "record": record,
    }


def _samples_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a frame with every base column present (even with no rows) and numeric types."""
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=list(dict.fromkeys([*SAMPLE_COLUMNS, *frame.columns])))
    frame["correct"] = frame["correct"].astype("boolean")
    frame[NUMERIC_COLUMNS] = frame[NUMERIC_COLUMNS].apply(pd.to_numeric).astype(float)
    return frame


def _layers_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["config_key", "task", "sample_id", "layer", "kept_cube_fraction", "ffn_active_fraction", "entropy"]
    layers = [{"config_key": row["config_key"], "task": row["task"], "sample_id": row["sample_id"], **layer}
              for row in rows for layer in row["record"].get("layers") or []]
    return pd.DataFrame(layers, columns=columns)
