"""``report table``: rows per config, the summary's scores, FLOP reduction, category breakdowns, formats."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from adaspark_eval.reporting.load import load_results
from adaspark_eval.reporting.render import render
from adaspark_eval.reporting.tables import COST_HEADERS, report_tables, task_table
from adaspark_eval.results.store import read_samples


@pytest.fixture(scope="module")
def tables(results_tree: Path) -> dict[str, pd.DataFrame]:
    return report_tables(load_results(results_tree))


def test_one_score_table_per_task_then_one_per_category_key(tables: dict[str, pd.DataFrame]) -> None:
    titles = [title.split(" (")[0] for title in tables]
    assert titles == ["videomme: score"] * 5 + ["mlvu_dev: score"] * 2 + ["videoniah: score"] * 3
    assert [title.split(" by ")[1] for title in tables if " by " in title] == [
        "domain", "duration", "sub_category", "task_type", "task_type", "task", "type"]


def test_task_table_rows_and_values(results_tree: Path) -> None:
    table = task_table(load_results(results_tree), "mlvu_dev")
    assert list(table.index[:4]) == ["dense", "adaspark p=0.6", "adaspark p=0.8", "adaspark p=0.9"]
    assert list(table.columns) == ["m_avg", *COST_HEADERS.values()]  # MLVU's headline is M-Avg
    summary = json.loads((results_tree / "sweep/p0.9/summary.json").read_text())
    assert table.loc["adaspark p=0.9", "m_avg"] == round(summary["scores"]["mlvu_dev/m_avg"], 1)
    assert table.loc["adaspark p=0.9", "FLOPs -% (LLM prefill)"] == 35.0  # keeps 0.2 + 0.5 * 0.9
    assert table.loc["dense", "FLOPs -% (LLM prefill)"] == 0.0
    assert table.loc["adaspark p=0.8 cube=2x2x2", "samples"] == 6
    # TFLOPs are means per sample: the fixture's dense prefill is 20, 40, 60 TFLOPs, twice over
    assert table.loc["dense", "TFLOPs (LLM prefill)"] == pytest.approx(40.0)


def test_category_scores_are_percent_correct(results_tree: Path, tables: dict[str, pd.DataFrame]) -> None:
    table = tables["videomme: score (%, lmms rule) by task_type"]
    records = [r for r in read_samples(results_tree / "sweep/p0.6/samples.jsonl") if r["task"] == "videomme"]
    ocr = [r["correct"] for r in records if r["category"]["task_type"] == "OCR Problems"]
    assert table.loc["adaspark p=0.6", "OCR Problems"] == round(100 * sum(ocr) / len(ocr), 1)
    assert list(table.columns) == ["Counting Problem", "OCR Problems"]


def test_videoniah_categories_follow_the_circular_rule(results_tree: Path, tables: dict[str, pd.DataFrame]) -> None:
    table = tables["videoniah: score (%, official rule) by type"]
    records = [r for r in read_samples(results_tree / "sweep/p0.9/samples.jsonl") if r["task"] == "videoniah"]
    videos = {r["niah"]["video"] for r in records if r["niah"]["type"] == "ret_edit1"}
    right = [all(r["correct"] for r in records if r["niah"]["video"] == video) for video in videos]
    assert table.loc["adaspark p=0.9", "ret_edit1"] == round(100 * sum(right) / len(right), 1)
    assert set(table.loc["dense"]) == {100.0}  # the fixture's dense run answers every try right
    by_task = tables["videoniah: score (%, official rule) by task"]
    assert list(by_task.columns) == ["cnt", "ret"]
    assert by_task.loc["adaspark p=0.9", "ret"] == table.loc["adaspark p=0.9", "ret_edit1"]


def test_formats(tables: dict[str, pd.DataFrame]) -> None:
    markdown = render(tables, "markdown")
    assert markdown.count("### ") == len(tables) and "| adaspark p=0.8 " in markdown
    latex = render(tables, "latex")
    assert latex.count(r"\begin{tabular}") == len(tables) and r"mlvu\_dev" in latex
    long = pd.read_csv(io.StringIO(render(tables, "csv")))
    assert list(long.columns) == ["table", "row", "column", "value"]
    assert len(long) == sum(table.size for table in tables.values())
    cell = long[(long["row"] == "dense") & (long["column"] == "FLOPs -% (LLM prefill)")]
    assert set(cell["value"].astype(float)) == {0.0}
    with pytest.raises(ValueError, match="markdown, latex, csv"):
        render(tables, "html")  # type: ignore[arg-type]
