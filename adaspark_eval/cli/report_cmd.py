"""``adaspark-eval report``: tables, the paper's tables and plots from a results folder, every score
recomputed from the records under the scoring rule chosen (``--scoring``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from adaspark_eval.cli.common import fail, friendly

Format = Literal["markdown", "latex", "csv"]  # reporting.render.Format, which imports pandas

report_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Tables and plots from a results folder (the run folders of `run` and `sweep`).")

ResultsOption = Annotated[Path, typer.Option(
    "--results", help="results folder, searched for run folders (summary.json + samples.jsonl)")]
ModelOption = Annotated[str | None, typer.Option(
    help="report only the runs of this model (needed when the folder holds several)")]
FormatOption = Annotated[Format, typer.Option("--format", help="markdown | latex | csv (long form)")]
OutFileOption = Annotated[Path | None, typer.Option("--out", help="write to this file instead of stdout")]


class Scoring(str, Enum):
    """``--scoring``: the rule every benchmark's scores are recomputed under (``datasets.scoring``)."""

    default = "default"
    lmms = "lmms"
    official = "official"


ScoringOption = Annotated[Scoring, typer.Option(
    "--scoring", help="lmms (lmms-eval's; VideoNIAH: the lenient parser) | official (each benchmark's released "
                      "evaluator) | default (lmms for Video-MME and MLVU, official for VideoNIAH); scores are "
                      "recomputed from the records' raw predictions")]


@report_app.command("table")
@friendly
def table_command(results: ResultsOption, fmt: FormatOption = "markdown", out: OutFileOption = None,
                  model: ModelOption = None, scoring: ScoringOption = Scoring.default) -> None:
    """Per task and config: scores, FLOP reduction, TFLOPs, latency; then category breakdowns."""
    from adaspark_eval.reporting.render import render
    from adaspark_eval.reporting.tables import report_tables

    _emit(render(report_tables(_loaded(results, model, scoring.value)), fmt), out)


@report_app.command("paper")
@friendly
def paper_command(
    results: ResultsOption,
    p: Annotated[list[float] | None, typer.Option(
        "--p", help="AdaSpark p of the main and comparison tables; repeat for several (default: every p run)")] = None,
    fmt: FormatOption = "markdown",
    out: OutFileOption = None,
    model: ModelOption = None,
    scoring: ScoringOption = Scoring.default,
) -> None:
    """The paper's main table (dense and AdaSpark at each --p), the peer methods at AdaSpark's FLOPs (the
    nearest run of each) and the ablations the runs hold."""
    from adaspark_eval.reporting.paper import paper_tables
    from adaspark_eval.reporting.render import render

    _emit(render(paper_tables(_loaded(results, model, scoring.value), p), fmt), out)


@report_app.command("plot")
@friendly
def plot_command(
    results: ResultsOption,
    out: Annotated[Path, typer.Option("--out", help="folder for the PNG and PDF figures")],
    model: ModelOption = None,
    scoring: ScoringOption = Scoring.default,
) -> None:
    """Accuracy vs FLOPs per task, per-layer sparsity vs p, VideoNIAH depth x length heatmap."""
    from adaspark_eval.reporting.plots import plot_all

    paths = plot_all(_loaded(results, model, scoring.value), out)
    if not paths:
        raise fail(f"the runs under {results} hold no scores with FLOP counts, layer statistics or VideoNIAH "
                   "samples to plot: run the tasks with FLOP counting on, then plot again")
    for path in paths:
        typer.echo(path)


def _emit(text: str, out: Path | None) -> None:
    """``text`` to ``out``, or to stdout."""
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"wrote {out}")


def _loaded(results: Path, model: str | None, scoring: str) -> Any:
    """``reporting.load.load_results``, its warnings (a run folder skipped, a damaged samples line) on
    stderr, one line each."""
    from adaspark_eval.reporting.load import load_results

    loaded = load_results(results, model, scoring)
    for warning in loaded.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    return loaded
