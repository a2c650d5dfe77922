"""``adaspark-eval run`` and ``adaspark-eval sweep``: evaluate AdaSpark on benchmarks through lmms-eval,
from local data. ``run`` evaluates one config into one run folder; ``sweep`` takes comma-separated
lists on any knob (``--p 0.6,0.8,1.0 --cube 2,4``) and evaluates their grid, one run folder each.
``run --num-processes N`` runs the same command in N processes (``models.parallel``)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from adaspark_eval.datasets import DATA_ROOT_ENV, Benchmark, data_root, parse_tasks
from adaspark_eval.datasets.demo import demo_root
from adaspark_eval.cli.common import fail, friendly, with_knobs
from adaspark_eval.models.parallel import launch, leave, world_size
from adaspark_eval.evaluation.runner import check_data, evaluate
from adaspark_eval.evaluation.sweep import grid, sweep
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.methods import METHODS, make_method
from adaspark_eval.reporting.load import load_results
from adaspark_eval.reporting.render import render
from adaspark_eval.reporting.aggregate import ordered_tasks
from adaspark_eval.reporting.tables import FLOPS_NOTE, task_table


def resolve_root(benchmarks: list[Benchmark], given: Path | None) -> Path:
    """The data root; with none given for VideoNIAH alone, the generated offline demo set."""
    if given is None and [b.name for b in benchmarks] == ["videoniah"]:
        root = demo_root()
        typer.secho(f"no --data-root: using the generated VideoNIAH demo set at {root}", err=True)
        return root
    return data_root(given)


def _command(many: bool) -> Callable[..., None]:
    """The ``run`` (``many=False``) or ``sweep`` command: the same flags, one point or a grid."""

    @with_knobs(parse=False)
    @friendly
    def command(
        knobs: dict[str, str],
        task: Annotated[str, typer.Option(help="videomme, mlvu_dev, videoniah; comma-separated for several")],
        model: Annotated[str, typer.Option(help="auto (the 7B in the local HF cache, else the embedded niah-small), "
                                                "niah-small, tiny, a checkpoint directory, or a cached hub name")] = "auto",
        data_root_dir: Annotated[Path | None, typer.Option(
            "--data-root", envvar=DATA_ROOT_ENV,
            help="the data root: <root>/<task>/... (see `data check`); VideoNIAH alone defaults to the demo set")] = None,
        output: Annotated[Path | None, typer.Option(
            help="run folder (sweep: the folder of its run folders); default under results/")] = None,
        limit: Annotated[int | None, typer.Option(help="samples per task (for a quick look)")] = None,
        device: Annotated[str | None, typer.Option(help="cuda, cuda:1, cpu (default: cuda when available)")] = None,
        device_map: Annotated[str | None, typer.Option(
            help="split the model over GPUs of this one process: auto (every visible GPU) or cuda:0,cuda:1 "
                 "(README: Several GPUs)")] = None,
        dtype: Annotated[str, typer.Option(help="bfloat16 | float16 | float32")] = "bfloat16",
        fused_ops: Annotated[bool, typer.Option(
            help="RMSNorm, rotary embedding and SiLU-and-multiply as fused kernels (GPU; README: GPU kernels)")] = False,
        frames: Annotated[int, typer.Option(help="frames sampled per video (lmms-eval's max_num_frames)")] = 32,
        fps: Annotated[float | None, typer.Option(help="sample frames at this rate instead of --frames")] = None,
        min_pixels: Annotated[int, typer.Option(help="fewest pixels per frame")] = VideoSettings.min_pixels,
        max_pixels: Annotated[int, typer.Option(help="most pixels per frame")] = VideoSettings.max_pixels,
        share: Annotated[bool, typer.Option(help="sweep: decode and encode each video once for all points "
                                                 "(--no-share: once per point, for latency comparisons)")] = True,
        method: Annotated[str, typer.Option(help=f"{' | '.join(METHODS)}: AdaSpark or a peer method "
                                                 "(README: Peer methods)")] = "adaspark",
        window: Annotated[int | None, typer.Option(help="window: slabs of cube_t time steps read on each side")] = None,
        fastv_layer: Annotated[int | None, typer.Option(help="fastv: prune after this layer (0-based)")] = None,
        fastv_keep: Annotated[float | None, typer.Option(help="fastv: fraction of visual tokens kept")] = None,
        frame_budget: Annotated[float | None, typer.Option(
            help="frames: fraction of the full-frame dense LLM-prefill FLOPs")] = None,
        num_processes: Annotated[int, typer.Option(
            help="run: processes, one per device, samples shared out among them (README: Several GPUs)")] = 1,
    ) -> None:
        points = grid(knobs)
        if not many and len(points) > 1:
            raise fail(f"{len(points)} configs given ({', '.join(p.name for p in points)}): "
                       "use `adaspark-eval sweep` for lists of values")
        benchmarks = parse_tasks(task)
        root = resolve_root(benchmarks, data_root_dir)
        for check in check_data(benchmarks, root):
            if check.missing:
                typer.secho(f"warning: {check.benchmark}: {len(check.missing)} of {check.videos} videos missing; "
                            f"their samples are recorded as errors (adaspark-eval data check --task {check.benchmark} "
                            "lists them)", err=True, fg=typer.colors.YELLOW)
        names = "+".join(b.name for b in benchmarks)
        settings = {name: value for name, value in {"window": window, "fastv_layer": fastv_layer,
                    "fastv_keep": fastv_keep, "frame_budget": frame_budget}.items() if value is not None}
        make_method(method, settings)  # bad settings stop here, before the model loads
        if many and (num_processes > 1 or world_size() > 1):
            raise fail("sweep runs in one process: evaluate its points with `run --num-processes`")
        if device_map is not None and num_processes > 1:
            raise fail("--device-map splits one process's model over GPUs; with --num-processes each process holds "
                       "one GPU: pass one of them")
        if num_processes > 1 and world_size() == 1:  # the launcher: the same command in each process
            raise typer.Exit(launch(num_processes, sys.argv[1:]))
        lm = AdaSparkLMM(pretrained=model, device=device, device_map=device_map, dtype=dtype, fused_ops=fused_ops,
                         max_num_frames=frames, fps=fps,
                         min_pixels=min_pixels, max_pixels=max_pixels, method=method, **settings,
                         **points[0].config.to_dict())
        if many:
            tag = hashlib.sha1("|".join(lm.config_key + p.name for p in points).encode()).hexdigest()[:8]
            folder = output or Path("results") / f"sweep-{names}-{tag}"
            sweep(lm, benchmarks, root, points, folder, limit=limit, share=share)
        else:
            folder = output or Path("results") / f"{names}-{lm.config_key}"
            lm.store = lm.open_store(folder)
            evaluate(lm, benchmarks, root, limit=limit)
        if lm.rank == 0:
            _print_overview(folder)
        leave()

    command.__doc__ = (
        "Evaluate a grid of configs (comma-separated values on any knob), one run folder each; each video is "
        "decoded and encoded once for all points." if many else
        "Check the data, evaluate one config through lmms-eval, write samples.jsonl and summary.json.")
    return command


def _print_overview(folder: Path) -> None:
    """Per task, the headline table of ``report table`` for the runs under ``folder`` (score, FLOPs,
    latency)."""
    results = load_results(folder)
    for task in ordered_tasks(results.samples["task"]):
        typer.echo(render({f"{task}: score (%) and cost ({FLOPS_NOTE})": task_table(results, task)}, "markdown"))
    typer.echo(f"results: {folder}")


run_command: Any = _command(many=False)
sweep_command: Any = _command(many=True)
