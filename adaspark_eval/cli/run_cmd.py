"""``adaspark-eval run``: evaluate AdaSpark on one or more benchmarks through lmms-eval, from local data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adaspark_eval.benchmarks import DATA_ROOT_ENV, data_root, parse_tasks
from adaspark_eval.cli.common import friendly, with_knobs
from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.evaluation.runner import check_data, evaluate
from adaspark_eval.lmms.inputs import VideoSettings
from adaspark_eval.lmms.model import AdaSparkLMM, run_key


@with_knobs()
@friendly
def run_command(
    config: AdaSparkConfig,
    task: Annotated[str, typer.Option(help="videomme, mlvu_dev, videoniah; comma-separated for several")],
    model: Annotated[str, typer.Option(help="tiny, a checkpoint directory, or a cached hub name")] = "tiny",
    data_root_dir: Annotated[Path | None, typer.Option(
        "--data-root", envvar=DATA_ROOT_ENV, help="the data root: <root>/<task>/... (see `data check`)")] = None,
    output: Annotated[Path | None, typer.Option(help="run folder (default results/<tasks>-<config key>/)")] = None,
    limit: Annotated[int | None, typer.Option(help="samples per task (for a quick look)")] = None,
    device: Annotated[str | None, typer.Option(help="cuda, cuda:1, cpu (default: cuda when available)")] = None,
    dtype: Annotated[str, typer.Option(help="bfloat16 | float16 | float32")] = "bfloat16",
    frames: Annotated[int, typer.Option(help="frames sampled per video (lmms-eval's max_num_frames)")] = 32,
    fps: Annotated[float | None, typer.Option(help="sample frames at this rate instead of --frames")] = None,
    min_pixels: Annotated[int, typer.Option(help="fewest pixels per frame")] = VideoSettings.min_pixels,
    max_pixels: Annotated[int, typer.Option(help="most pixels per frame")] = VideoSettings.max_pixels,
) -> None:
    """Check the data, run the sparse model through lmms-eval, write samples.jsonl and summary.json."""
    benchmarks = parse_tasks(task)
    root = data_root(data_root_dir)
    for check in check_data(benchmarks, root):
        if check.missing:
            typer.secho(f"warning: {check.benchmark}: {len(check.missing)} of {check.videos} videos missing; their "
                        "samples are recorded as errors "
                        f"(adaspark-eval data check --task {check.benchmark} lists them)",
                        err=True, fg=typer.colors.YELLOW)
    video = VideoSettings(frames, fps, min_pixels, max_pixels)
    names = "+".join(b.name for b in benchmarks)
    folder = output or Path("results") / f"{names}-{run_key(config, model, video, dtype)}"
    lm = AdaSparkLMM(pretrained=model, device=device, dtype=dtype, max_num_frames=frames, fps=fps,
                     min_pixels=min_pixels, max_pixels=max_pixels, output=folder, **config.to_dict())
    summary = evaluate(lm, benchmarks, root, limit=limit)
    for name, value in summary["scores"].items():
        typer.echo(f"{name:<40} {value:6.2f}")
    latency = summary["latency"]
    typer.echo(f"{summary['n_samples']} samples, {summary['n_errors']} errors"
               + (f", {latency['prefill_s']:.3f} s prefill / {latency['total_s']:.3f} s per sample" if latency else "")
               + "".join(f", FLOP reduction {k} {v:.1%}" for k, v in summary["flop_reduction"].items()))
    typer.echo(f"results: {lm.store.folder}")
