"""The ``adaspark-eval`` command line: a thin layer over the package."""

from __future__ import annotations

import typer

from adaspark_eval.cli.cache_cmd import cache_app
from adaspark_eval.cli.data_cmd import data_app
from adaspark_eval.cli.flops_cmd import flops_command
from adaspark_eval.cli.inspect_cmd import inspect_command
from adaspark_eval.cli.niah_cmd import niah_app
from adaspark_eval.cli.report_cmd import report_app
from adaspark_eval.cli.run_cmd import run_command, sweep_command

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Evaluate AdaSpark adaptive sparsity on Qwen2.5-VL long-video benchmarks.")
app.command("run")(run_command)
app.command("sweep")(sweep_command)
app.command("inspect")(inspect_command)
app.add_typer(data_app, name="data")
app.command("flops")(flops_command)
app.add_typer(niah_app, name="niah")
app.add_typer(report_app, name="report")
app.add_typer(cache_app, name="cache")


@app.callback()
def main() -> None:
    """adaspark-eval: AdaSpark on Qwen2.5-VL, evaluated on MLVU, VideoMME and VideoNIAH."""

if __name__ == "__main__":
    app()
