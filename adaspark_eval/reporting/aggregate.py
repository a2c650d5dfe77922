"""Samples reduced to what reports show: one row per config, one point per config and task
(headline score, FLOPs, latency), category scores by each task's scoring rule (``Results.rule``),
per-layer sparsity, VideoNIAH depth x length tables.

FLOPs are counted at 2 per multiply-add; reductions are percent (mean over scored samples of
``1 - actual / dense``); TFLOPs and seconds are means per scored sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from adaspark_eval.data.niah.scoring import depth_length_table, score
from adaspark_eval.datasets.scoring import get_rule, has_rules
from adaspark_eval.reporting.load import AS_RUN, RUN_COLUMNS, Results

TASK_ORDER = ("videomme", "mlvu_dev", "videoniah")
HEADLINE_METRICS = ("m_avg", "overall")  # a task's headline summary metric: the first of these it has
METHOD_ORDER = ("dense", "adaspark")     # then peer methods, alphabetically
MAIN_SERIES = "adaspark"                 # AdaSpark with every knob but p at its default
COST_COLUMNS = ["n", "errors", "prefill_reduction", "total_reduction", "prefill_tflops", "prefill_dense_tflops",
                "total_tflops", "total_dense_tflops", "prefill_s", "total_s"]


def ordered_tasks(tasks: Iterable[str]) -> list[str]:
    """``tasks`` without repeats, the three benchmarks first (paper order), others alphabetically."""
    unique = set(tasks)
    return [t for t in TASK_ORDER if t in unique] + sorted(unique - set(TASK_ORDER))


def headline_metric(metrics: Iterable[str]) -> str | None:
    """The metric a task is reported by: ``m_avg`` or ``overall`` when present, else the first name."""
    names = sorted(metrics)
    return next((m for m in HEADLINE_METRICS if m in names), names[0] if names else None)


def configs(results: Results) -> pd.DataFrame:
    """One row per config, indexed by ``config_key``: ``method``, ``label`` (made unique), ``series``,
    ``model`` and the knobs, in report order: dense, AdaSpark (main series first, by p), peer methods."""
    runs = results.runs
    per_run = [c for c in RUN_COLUMNS if c not in ("method", "config_key", "label", "series", "model")]
    table = (runs.drop_duplicates("config_key", keep="last")  # runs are ordered oldest first
             .drop(columns=[c for c in runs if c in per_run or c.startswith(("flop_reduction.", "latency."))]))
    rank = table["method"].map({m: i for i, m in enumerate(METHOD_ORDER)}).fillna(len(METHOD_ORDER))
    columns = [c for c in ("series", "fixed_ratio", "p") if c in table]
    table = table.assign(_rank=rank).sort_values(["_rank", "method", *columns], kind="stable").drop(columns="_rank")
    repeated = table["label"].duplicated(keep=False)
    table.loc[repeated, "label"] = table["label"] + " [" + table["config_key"] + "]"
    return table.set_index("config_key")


def costs(samples: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """``COST_COLUMNS`` per group of ``samples``: ``n`` scored samples, ``errors``, mean reductions (%),
    TFLOPs and seconds over the scored ones."""
    errors = samples.groupby(by)["error"].count().rename("errors")
    table = samples[samples["correct"].notna()].groupby(by).agg(
        n=("sample_id", "size"),
        prefill_reduction=("prefill_reduction", "mean"),
        total_reduction=("total_reduction", "mean"),
        prefill_tflops=("prefill_flops", "mean"),
        prefill_dense_tflops=("prefill_dense_flops", "mean"),
        total_tflops=("total_flops", "mean"),
        total_dense_tflops=("total_dense_flops", "mean"),
        prefill_s=("prefill_s", "mean"),
        total_s=("total_s", "mean"),
    ).reindex(errors.index)
    table[["prefill_reduction", "total_reduction"]] *= 100
    table[[c for c in table if c.endswith("tflops")]] /= 1e12
    table["n"] = table["n"].fillna(0).astype(int)
    return table.join(errors)[COST_COLUMNS]


def headline_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The headline ``metric`` and its ``score`` per (config_key, task) of a ``Results.scores`` table."""
    rows = []
    for (key, task), group in scores.groupby(["config_key", "task"]):
        values = group.set_index("metric")["value"]
        metric = headline_metric(values.index)
        rows.append({"config_key": key, "task": task, "metric": metric, "score": values[metric]})
    return pd.DataFrame(rows, columns=["config_key", "task", "metric", "score"]).set_index(["config_key", "task"])


def points(results: Results) -> pd.DataFrame:
    """One row per (config, task) with samples or scores, in report order: ``config_key``, ``task``,
    ``COST_COLUMNS``, ``metric`` (the task's headline), ``score`` (percent, from the summary) and the
    config's columns (``method``, ``label``, ``series``, knobs, ...)."""
    table_configs = configs(results)
    table = costs(results.samples, ["config_key", "task"]).join(headline_scores(results.scores), how="outer")
    table = table.reset_index().join(table_configs, on="config_key")
    ranks = {"task": {t: i for i, t in enumerate(ordered_tasks(table["task"]))},
             "config_key": {k: i for i, k in enumerate(table_configs.index)}}
    return table.sort_values(["task", "config_key"], key=lambda c: c.map(ranks[c.name]), ignore_index=True)


def group_score(task: str, samples: pd.DataFrame, rule: str = AS_RUN) -> float:
    """Percent score of ``samples`` (of ``task``) under scoring ``rule``, recomputed from the records'
    predictions (``datasets.scoring``: e.g. VideoNIAH's 4-try circular ``overall``, Video-MME's official
    right / parsed). ``as run`` (or a task without rules) reads each record's stored ``correct``: VideoNIAH
    by ``data.niah.scoring.score`` (a failed try counts as wrong), others percent correct of the scored
    samples. NaN when nothing is scored."""
    if rule != AS_RUN and has_rules(task):
        records = list(samples["record"])
        return get_rule(task, rule).group(records) if records else math.nan
    if task == "videoniah":
        records = niah_records(samples)
        return score(records)["overall"] if records else math.nan
    scored = samples["correct"].dropna()
    return 100 * float(scored.astype(float).mean()) if len(scored) else math.nan


def category_scores(results: Results, task: str, key: str) -> pd.DataFrame:
    """``group_score`` (under ``results.rule(task)``) of the samples of ``task`` per value of category ``key``
    (columns), one row per config (index ``config_key``, report order)."""
    samples = results.samples[results.samples["task"] == task].dropna(subset=[f"category.{key}"])
    rule = results.rule(task)
    cells = {group: group_score(task, rows, rule)
             for group, rows in samples.groupby(["config_key", f"category.{key}"])}
    table = pd.Series(cells, dtype=float).unstack()
    table.columns.name = key
    return table.reindex([k for k in configs(results).index if k in table.index])


def category_keys(results: Results, task: str) -> list[str]:
    """The category keys the samples of ``task`` carry, sorted, e.g. ``duration``, ``task_type``."""
    samples = results.samples[results.samples["task"] == task]
    return sorted(c.removeprefix("category.") for c in samples
                  if c.startswith("category.") and samples[c].notna().any())


def layer_profile(results: Results, series: str = MAIN_SERIES) -> pd.DataFrame:
    """Mean kept-cube and FFN-active fraction per (p, layer) over every sample of the configs of
    ``series``; columns ``p``, ``layer``, ``kept_cube_fraction``, ``ffn_active_fraction``."""
    table = configs(results)
    if "p" not in table:  # no AdaSpark run (peer methods only): no profile
        return pd.DataFrame(columns=["p", "layer", "kept_cube_fraction", "ffn_active_fraction"])
    chosen = table.loc[table["series"] == series, "p"]
    layers = results.layers[results.layers["config_key"].isin(chosen.index)]
    layers = layers.assign(p=layers["config_key"].map(chosen))
    return (layers.groupby(["p", "layer"], as_index=False)[["kept_cube_fraction", "ffn_active_fraction"]]
            .mean())


def niah_records(samples: pd.DataFrame, rule: str = AS_RUN) -> list[dict[str, Any]]:
    """The VideoNIAH tries of ``samples`` in the form ``data.niah.scoring`` reads: the record's ``niah``
    fields (``video``, ``type``, ``try``, ``depth``, ``length``, ...) and ``correct``: the stored one
    (``as run``), else whether scoring ``rule`` reads the gold option from the prediction."""
    records = [record for record in samples["record"] if record.get("niah")]
    if rule == AS_RUN:
        return [{**record["niah"], "correct": record["correct"]} for record in records]
    choice = get_rule("videoniah", rule).choice
    return [{**record["niah"], "correct": choice(record) == str(record["answer"])} for record in records]


def niah_tables(results: Results) -> dict[str, pd.DataFrame]:
    """VideoNIAH accuracy (%) by needle depth bin (rows) x haystack length (columns, seconds), per
    config with VideoNIAH tries (report order), by the 4-try circular rule
    (``data.niah.scoring.depth_length_table``) on each try judged by ``results.rule("videoniah")``."""
    samples = results.samples[results.samples["task"] == "videoniah"]
    rule = results.rule("videoniah")
    tables = {}
    for key, rows in samples.groupby("config_key"):
        records = niah_records(rows, rule)
        if records:
            tables[key] = depth_length_table(records)
    return {key: tables[key] for key in configs(results).index if key in tables}
