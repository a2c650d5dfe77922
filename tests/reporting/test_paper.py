"""``report paper``: the main table and the ablation tables found in the run configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adaspark_eval.reporting.load import Results, load_results
from adaspark_eval.reporting.paper import (
    ABLATIONS,
    MATCHED,
    REDUCTION,
    ablation_table,
    comparison_table,
    main_table,
    paper_tables,
)

SCORES = ["VideoMME (overall, lmms)", "MLVU dev (m_avg, lmms)", "VideoNIAH (overall, official)"]  # default rules


@pytest.fixture(scope="module")
def results(results_tree: Path) -> Results:
    return load_results(results_tree)


def summary_score(results_tree: Path, run: str, name: str, field: str = "scores") -> float:
    return round(json.loads((results_tree / run / "summary.json").read_text())[field][name], 1)


def test_main_table_layout(results: Results, results_tree: Path) -> None:
    table = main_table(results, [0.8])
    assert list(table.index) == ["Dense", "AdaSpark p=0.8"]
    assert list(table.columns) == [*SCORES, REDUCTION]
    assert table.loc["Dense", SCORES[2]] == summary_score(results_tree, "dense/part2", "videoniah/overall",
                                                          "scores_official")
    assert table.loc["Dense", SCORES[0]] == summary_score(results_tree, "dense/part1", "videomme/overall")
    assert table.loc["AdaSpark p=0.8", SCORES[1]] == summary_score(results_tree, "sweep/p0.8", "mlvu_dev/m_avg")
    assert table[REDUCTION].tolist() == [0.0, 40.0]
    assert list(main_table(results).index) == ["Dense", "AdaSpark p=0.6", "AdaSpark p=0.8", "AdaSpark p=0.9"]


def test_main_table_names_the_p_values_run(results: Results) -> None:
    with pytest.raises(ValueError, match=r"p=0.75: runs exist at p=0.6, 0.8, 0.9"):
        main_table(results, [0.75])


@pytest.mark.parametrize("ablation, rows", [
    (ABLATIONS[0], ["adaspark p=0.6", "adaspark p=0.8", "adaspark p=0.9", "adaspark fixed_ratio=0.4"]),
    (ABLATIONS[1], ["adaspark p=0.8", "adaspark p=0.8 compensation=none"]),
    (ABLATIONS[2], ["adaspark p=0.8", "adaspark p=0.8 cube=2x2x2"]),
    (ABLATIONS[3], ["adaspark p=0.8", "adaspark p=0.8 attention=False", "adaspark p=0.8 ffn=False"]),
])
def test_ablations_are_found_in_the_configs(results: Results, ablation, rows: list[str]) -> None:
    table = ablation_table(results, ablation)
    assert list(table.index) == rows
    assert list(table.columns) == ["p", *ablation.knobs, *SCORES, REDUCTION]


def test_ablation_cells(results: Results) -> None:
    fixed = ablation_table(results, ABLATIONS[0])
    assert fixed["p"].isna().tolist() == [False, False, False, True]  # a fixed ratio replaces p
    assert fixed.loc["adaspark fixed_ratio=0.4", REDUCTION] == 60.0
    modules = ablation_table(results, ABLATIONS[3])
    assert modules[["attention", "ffn"]].values.tolist() == [[True, True], [False, True], [True, False]]


def test_paper_tables_skip_ablations_not_run(results_tree: Path, tmp_path: Path) -> None:
    shutil.copytree(results_tree / "sweep", tmp_path / "sweep")
    shutil.copytree(results_tree / "dense", tmp_path / "dense")
    tables = paper_tables(load_results(tmp_path))
    assert [title.split(" (")[0] for title in tables] == ["Main table"]
    assert [title.split(" (")[0] for title in paper_tables(load_results(results_tree))] == [
        "Main table", "Peer methods at matched FLOPs", *(f"Ablation: {a.title}" for a in ABLATIONS)]


def test_peer_methods_at_matched_flops(results: Results) -> None:
    # fixture LLM-prefill reductions: AdaSpark p=0.6/0.8/0.9 -> 50/40/35 %, fastv p=0.5/0.7 -> 50/30 %
    table = comparison_table(results)
    assert list(table.columns) == [MATCHED, *SCORES, REDUCTION]
    assert list(zip(table[MATCHED], table.index)) == [
        ("AdaSpark p=0.6", "adaspark p=0.6"), ("AdaSpark p=0.6", "fastv p=0.5"),  # the nearest
        ("AdaSpark p=0.8", "adaspark p=0.8"), ("AdaSpark p=0.8", "fastv p=0.5"),  # a tie: the cheaper
        ("AdaSpark p=0.9", "adaspark p=0.9"), ("AdaSpark p=0.9", "fastv p=0.7")]
    assert table[REDUCTION].tolist() == [50.0, 50.0, 40.0, 50.0, 35.0, 30.0]
    assert list(comparison_table(results, [0.9]).index) == ["adaspark p=0.9", "fastv p=0.7"]
