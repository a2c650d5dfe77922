"""The report tables of a results tree, one row per config: per task, its summary scores with FLOP
reduction, TFLOPs and latency; per task and category, percent correct."""

from __future__ import annotations

import pandas as pd

from adaspark_eval.reporting.aggregate import (
    category_keys,
    category_scores,
    configs,
    headline_metric,
    ordered_tasks,
    points,
)
from adaspark_eval.reporting.load import Results

COST_HEADERS = {
    "n": "samples",
    "errors": "errors",
    "prefill_reduction": "FLOPs -% (LLM prefill)",
    "total_reduction": "FLOPs -% (total)",
    "prefill_tflops": "TFLOPs (LLM prefill)",
    "total_tflops": "TFLOPs (total)",
    "prefill_s": "prefill s",
    "total_s": "total s",
}
FLOPS_NOTE = "FLOPs at 2 per multiply-add, means per scored sample"
PERCENT_DECIMALS = 1


def task_table(results: Results, task: str) -> pd.DataFrame:
    """Rows: configs (by label). Columns: every summary metric of ``task`` in percent (headline first),
    then ``COST_HEADERS``."""
    rows = points(results).query("task == @task").set_index("config_key")
    scores = results.scores[results.scores["task"] == task].pivot(index="config_key", columns="metric",
                                                                   values="value")
    headline = headline_metric(scores.columns)
    metrics = [headline, *sorted(c for c in scores.columns if c != headline)] if headline else []
    table = scores.reindex(index=rows.index, columns=metrics).join(rows[list(COST_HEADERS)].rename(columns=COST_HEADERS))
    percent = [*metrics, COST_HEADERS["prefill_reduction"], COST_HEADERS["total_reduction"]]
    table[percent] = table[percent].round(PERCENT_DECIMALS)
    return _by_label(table, results)


def category_table(results: Results, task: str, key: str) -> pd.DataFrame:
    """Rows: configs (by label). Columns: the values of category ``key``; cells: percent correct of
    the scored samples of ``task`` (a plain mean, whatever the task's official rule)."""
    return _by_label(category_scores(results, task, key).round(PERCENT_DECIMALS), results)


def report_tables(results: Results) -> dict[str, pd.DataFrame]:
    """Every table of ``report table``, by title: each task's scores and cost, then a category table
    for each breakdown the summaries do not already report (some category value is not a metric)."""
    tables = {}
    for task in ordered_tasks([*results.samples["task"], *results.scores["task"]]):
        tables[f"{task}: scores (%) and cost ({FLOPS_NOTE})"] = task_table(results, task)
        reported = set(results.scores.loc[results.scores["task"] == task, "metric"])
        for key in category_keys(results, task):
            table = category_table(results, task, key)
            if not set(table.columns) <= reported:
                tables[f"{task}: % correct by {key}"] = table
    return tables


def _by_label(table: pd.DataFrame, results: Results) -> pd.DataFrame:
    """``table`` indexed by config label instead of config key."""
    table = table.rename(index=configs(results)["label"])
    table.index.name = "config"
    return table
