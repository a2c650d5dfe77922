"""``adaspark-eval data check``: is a benchmark's local copy complete, and where do missing files go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adaspark_eval.cli.common import DATA_ROOT_ENV, friendly, outside_root_allowed

data_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="Local benchmark data: one folder per benchmark under a data root.")


@data_app.command("check")
@friendly
def check_command(
    task: Annotated[str, typer.Option(help="videomme, mlvu_dev or videoniah; comma-separated for several")],
    root: Annotated[Path | None, typer.Option(envvar=DATA_ROOT_ENV, help="the data root: <root>/<task>/...")] = None,
    decode: Annotated[bool, typer.Option(help="also decode the first and last frame of every video")] = True,
    allow_outside_root: Annotated[bool, typer.Option(
        "--allow-outside-root", help="accept videos that resolve outside their benchmark folder")] = False,
) -> None:
    """Annotation present, readable and holding every field the scorers read, every referenced video present
    (and decodable); exit 1 when files are missing, 2 when an annotation is empty or lacks a scorer field."""
    from adaspark_eval.datasets import data_root, parse_tasks
    from adaspark_eval.datasets.check import check_dataset

    folder = data_root(root)
    with outside_root_allowed(allow_outside_root):
        checks = [check_dataset(benchmark, folder, decode=decode) for benchmark in parse_tasks(task)]
    for check in checks:
        typer.echo("\n".join(check.lines()))
    if any(check.invalid for check in checks):
        raise typer.Exit(code=2)
    if not all(check.ok for check in checks):
        raise typer.Exit(code=1)
