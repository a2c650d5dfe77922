"""A report goes on past what it cannot read, and says so: a summary of ``{}``, a truncated summary and a
damaged samples line are each one warning naming the file; the other runs are reported."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.reporting.load import load_results


def _damaged_copy(results_tree: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    root = tmp_path / "results"
    shutil.copytree(results_tree, root)
    runs = sorted(path.parent for path in root.rglob("summary.json"))
    runs[0].joinpath("summary.json").write_text("{}")
    text = runs[1].joinpath("summary.json").read_text()
    runs[1].joinpath("summary.json").write_text(text[: len(text) // 2])
    samples = runs[2] / "samples.jsonl"
    lines = samples.read_text().splitlines()
    lines[1] = lines[1][:25]
    samples.write_text("\n".join(lines) + "\n")
    return root, runs


def test_unreadable_runs_are_skipped_with_one_warning_each(results_tree: Path, tmp_path: Path) -> None:
    root, runs = _damaged_copy(results_tree, tmp_path)
    whole = load_results(results_tree)
    loaded = load_results(root)
    assert len(loaded.runs) == len(whole.runs) - 2
    assert len(loaded.warnings) == 3
    assert loaded.warnings[0] == f"{runs[0] / 'summary.json'} lacks config_key, model, config: run folder skipped " \
                                 "(rerun it to rewrite its summary)"
    assert loaded.warnings[1].startswith(f"{runs[1] / 'summary.json'} cannot be read (")
    assert f"{runs[2] / 'samples.jsonl'}:2: damaged line skipped" in loaded.warnings[2]
    result = CliRunner().invoke(app, ["report", "table", "--results", str(root)])
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: ") == 3 and "### videomme" in result.output


def test_no_readable_run_is_one_line_naming_why(tmp_path: Path) -> None:
    run = tmp_path / "results" / "run"
    run.mkdir(parents=True)
    (run / "summary.json").write_text("{")
    (run / "samples.jsonl").write_text("")
    result = CliRunner().invoke(app, ["report", "table", "--results", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert result.output.startswith("error: no runs") and "summary.json cannot be read" in result.output
