"""The report tables of a results tree, one row per config: per task, its headline score with FLOP
reduction, TFLOPs and latency; per task and category key, the score of each category."""

from __future__ import annotations

import pandas as pd

from adaspark_eval.reporting.aggregate import category_keys, category_scores, configs, ordered_tasks, points
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
    """Rows: configs (by label). Columns: the task's headline summary score in percent (``overall``, or
    ``m_avg`` for MLVU), then ``COST_HEADERS``."""
    rows = points(results).query("task == @task").set_index("config_key")
    metric = rows["metric"].dropna().mode()
    table = rows[["score", *COST_HEADERS]].rename(columns={"score": metric[0] if len(metric) else "score",
                                                           **COST_HEADERS})
    percent = [table.columns[0], COST_HEADERS["prefill_reduction"], COST_HEADERS["total_reduction"]]
    table[percent] = table[percent].round(PERCENT_DECIMALS)
    return _by_label(table, results)


def category_table(results: Results, task: str, key: str) -> pd.DataFrame:
    """Rows: configs (by label). Columns: the values of category ``key``; cells: the score of the
    samples in that category under the task's scoring rule (``aggregate.group_score``), percent."""
    return _by_label(category_scores(results, task, key).round(PERCENT_DECIMALS), results)


def report_tables(results: Results) -> dict[str, pd.DataFrame]:
    """Every table of ``report table``, by title: per task, its headline score and cost, then one table
    per category key of its samples (``duration``, ``task_type``, ...). Each title names the scoring rule
    of its scores, e.g. ``videomme: score (%, lmms rule) and cost (...)``."""
    tables = {}
    for task in ordered_tasks([*results.samples["task"], *results.scores["task"]]):
        scored = f"score (%, {results.rule(task)} rule)"
        tables[f"{task}: {scored} and cost ({FLOPS_NOTE})"] = task_table(results, task)
        for key in category_keys(results, task):
            tables[f"{task}: {scored} by {key}"] = category_table(results, task, key)
    return tables


def _by_label(table: pd.DataFrame, results: Results) -> pd.DataFrame:
    """``table`` indexed by config label instead of config key."""
    table = table.rename(index=configs(results)["label"])
    table.index.name = "config"
    return table
