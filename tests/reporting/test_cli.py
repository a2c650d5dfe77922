"""``adaspark-eval report table|paper|plot`` through the command line."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from adaspark_eval.cli.main import app

runner = CliRunner()


def test_table_markdown_on_stdout(results_tree: Path) -> None:
    result = runner.invoke(app, ["report", "table", "--results", str(results_tree)])
    assert result.exit_code == 0, result.output
    assert "### videomme: score (%, lmms rule) and cost" in result.output and "| adaspark p=0.8 cube=2x2x2 " in result.output


def test_table_csv_and_latex_to_files(results_tree: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "table", "--results", str(results_tree), "--format", "csv",
                                 "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(tmp_path / "t.csv").columns) == ["table", "row", "column", "value"]
    result = runner.invoke(app, ["report", "table", "--results", str(results_tree), "--format", "latex",
                                 "--out", str(tmp_path / "t.tex")])
    assert result.exit_code == 0 and r"\begin{tabular}" in (tmp_path / "t.tex").read_text()


def test_paper_at_chosen_p(results_tree: Path) -> None:
    result = runner.invoke(app, ["report", "paper", "--results", str(results_tree), "--p", "0.8", "--format", "csv"])
    assert result.exit_code == 0, result.output
    long = pd.read_csv(io.StringIO(result.output))
    main = long[long["table"].str.startswith("Main table")]
    assert list(main["row"].unique()) == ["Dense", "AdaSpark p=0.8"]
    assert long["table"].str.startswith("Ablation: Cube size").any()
    matched = long[long["table"].str.startswith("Peer methods at matched FLOPs")]
    assert list(matched["row"].unique()) == ["adaspark p=0.8", "fastv p=0.5"]


def test_paper_with_a_p_not_run_is_one_line(results_tree: Path) -> None:
    result = runner.invoke(app, ["report", "paper", "--results", str(results_tree), "--p", "0.75"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: no AdaSpark run with default knobs at p=0.75: runs exist at p=0.6, 0.8, 0.9"]


def test_plot_writes_the_figures(results_tree: Path, tmp_path: Path) -> None:
    shutil.copytree(results_tree / "dense/part1", tmp_path / "dense")  # a small tree: test_plots checks the figures
    out = tmp_path / "plots"
    result = runner.invoke(app, ["report", "plot", "--results", str(tmp_path / "dense"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(Path(line).name for line in result.output.split()) == sorted(p.name for p in out.iterdir())
    assert {p.name for p in out.iterdir()} == {f"accuracy_vs_flops_{task}.{fmt}" for task in ("videomme", "mlvu_dev")
                                               for fmt in ("png", "pdf")}


def test_no_runs_names_the_fix(tmp_path: Path) -> None:
    for command in (["table"], ["paper"], ["plot", "--out", str(tmp_path / "plots")]):
        result = runner.invoke(app, ["report", *command, "--results", str(tmp_path)])
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: no runs under {tmp_path}") and "--results" in lines[0]
