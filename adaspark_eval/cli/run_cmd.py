"""``adaspark-eval run`` and ``adaspark-eval sweep``: evaluate AdaSpark on benchmarks through lmms-eval,
from local data. ``run`` evaluates one config into one run folder; ``sweep`` takes comma-separated
lists on any knob (``--p 0.6,0.8,1.0 --cube 2,4``) and evaluates their grid, one run folder each.
``run --num-processes N`` runs the same command in N processes (``models.parallel``).

Both commands take the same flags (``RunOptions``, one field per flag) and share ``prepare`` (checks that
need no model, then the model); each then does its own part in a few lines."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from adaspark_eval.cli.common import DATA_ROOT_ENV, fail, friendly, outside_root_allowed, with_knobs, with_options
from adaspark_eval.config import short_hash
from adaspark_eval.data.video import VideoSettings

if TYPE_CHECKING:
    from adaspark_eval.data.frame_cache import FrameCache
    from adaspark_eval.datasets import Benchmark
    from adaspark_eval.evaluation.sweep import SweepPoint
    from adaspark_eval.lmms.model import AdaSparkLMM
    from adaspark_eval.methods import Method

# the homes of these import torch: methods.METHODS (its names, in order) and data.frame_cache.DEFAULT_MAX_GB
METHOD_NAMES = ("adaspark", "dense", "topk", "window", "fastv", "frames", "xattention", "flexprefill",
                "visionzip", "dycoke")
DEFAULT_MAX_GB = 50.0


def _flag(help: str, **option: Any) -> Any:
    """An optional flag (default None) with its help and typer options (``envvar``, ``names``)."""
    return field(default=None, metadata={"help": help, **option})


def _setting(help: str) -> Any:
    """An optional flag that is a method setting (``RunOptions.peer_settings``; named as the method's field)."""
    return field(default=None, metadata={"help": help, "setting": True})


@dataclass
class RunOptions:
    """The flags ``run`` and ``sweep`` share (each field one ``--flag``; ``metadata`` holds its help)."""

    task: str = field(metadata={"help": "videomme, mlvu_dev, videoniah; comma-separated for several"})
    model: str = field(default="auto", metadata={
        "help": "auto (the 7B in the local HF cache, else the embedded niah-small), niah-small, tiny, a checkpoint "
                "directory, or a cached hub name"})
    data_root: Path | None = _flag("the data root: <root>/<task>/... (see `data check`); VideoNIAH alone defaults to "
                                   "the demo set", envvar=DATA_ROOT_ENV)
    output: Path | None = _flag("run folder (sweep: the folder of its run folders); default under results/")
    limit: int | None = _flag("samples per task (for a quick look)")
    device: str | None = _flag("cuda, cuda:1, cpu (default: cuda when available)")
    device_map: str | None = _flag("split the model over GPUs of this one process: auto (every visible GPU) or "
                                   "cuda:0,cuda:1 (docs/multi-gpu.md)")
    dtype: str = field(default="bfloat16", metadata={"help": "bfloat16 | float16 | float32"})
    batched_vision: bool = field(default=False, metadata={
        "help": "the vision encoder's window attention in one call per window size, not one per window (GPU speed; "
                "may differ in the last bit, so it enters the config key; docs/evaluation.md)"})
    decode: str = field(default="generate", metadata={
        "help": "generate (transformers' generate) | graph: greedy decode steps on a static KV cache replayed as a "
                "CUDA graph (GPU speed; may differ in rare near-ties, so it enters the config key; "
                "docs/evaluation.md)"})
    fused_ops: bool = field(default=False, metadata={
        "help": "RMSNorm, rotary embedding and SiLU-and-multiply as fused kernels (GPU; docs/kernels.md)"})
    frames: int = field(default=VideoSettings.max_num_frames,
                        metadata={"help": "frames sampled per video (lmms-eval's max_num_frames)"})
    fps: float | None = _flag("sample frames at this rate instead of --frames")
    min_pixels: int = field(default=VideoSettings.min_pixels, metadata={"help": "fewest pixels per frame"})
    max_pixels: int = field(default=VideoSettings.max_pixels, metadata={"help": "most pixels per frame"})
    method: str = field(default="adaspark", metadata={
        "help": f"{' | '.join(METHOD_NAMES)}: AdaSpark or a peer method (docs/peers.md)"})
    window: int | None = _setting("window: slabs of cube_t time steps read on each side")
    fastv_layer: int | None = _setting("fastv: prune after this layer (0-based)")
    fastv_keep: float | None = _setting("fastv: fraction of visual tokens kept")
    frame_budget: float | None = _setting("frames: fraction of the full-frame dense LLM-prefill FLOPs")
    # settings of the video token compression peers; text, so that sweep takes comma-separated lists
    visionzip_keep: str | None = _setting("visionzip: fraction of each frame group's tokens kept (sweep: a list)")
    visionzip_contextual: str | None = _setting("visionzip: share of the kept tokens that are merged contextual tokens")
    dycoke_window: str | None = _setting("dycoke: frames (temporal groups) per merging window")
    dycoke_merge: str | None = _setting("dycoke: fraction of each compared frame's tokens removed (sweep: a list)")
    dycoke_threshold: str | None = _setting("dycoke: a token is removed only at this cosine similarity or above")
    dycoke_layer: str | None = _setting("dycoke: decode steps read the chosen visual tokens from this layer on")
    dycoke_prune: str | None = _setting("dycoke: fraction of visual tokens pruned from the KV cache at decode")
    dycoke_refresh: str | None = _setting("dycoke: re-choose when the attention's cosine to the last step's is below")
    # text-typed: sweep takes comma-separated values (methods.from_dict reads the numbers)
    xattn_threshold: str | None = _setting("xattention: cumulative block-score threshold in (0, 1] (0.9)")
    xattn_stride: str | None = _setting("xattention: antidiagonal stride (16)")
    xattn_block: str | None = _setting("xattention: block size in tokens, a multiple of the stride (128)")
    flex_gamma: str | None = _setting("flexprefill: cumulative-attention threshold in (0, 1] (0.9)")
    flex_tau: str | None = _setting("flexprefill: Jensen-Shannon distance below which a head is query-aware (0.1)")
    flex_min_budget: str | None = _setting("flexprefill: vertical and slash lines kept at least per head (1024)")
    flex_block: str | None = _setting("flexprefill: block size in tokens (128)")
    allow_outside_root: bool = field(default=False, metadata={
        "help": "read annotation videos that resolve outside their benchmark folder (.., symlinks, absolute paths; "
                "refused by default)", "names": ("--allow-outside-root",)})
    workers: int | None = _flag("processes preparing the next samples (decode, resize, processor) while the model "
                                "runs; 0: in this process; default: from the CPU count (docs/evaluation.md)")
    frame_cache: Path | None = _flag("folder of the persistent frame cache (default ~/.cache/adaspark-eval/frames)")
    no_frame_cache: bool = field(default=False, metadata={"help": "decode every video, store nothing",
                                                          "names": ("--no-frame-cache",)})
    frame_cache_max_gb: float = field(default=DEFAULT_MAX_GB, metadata={
        "help": "the frame cache's size limit; least recently used entries go first"})

    def peer_settings(self) -> dict[str, Any]:
        """The method settings given (``--window`` ...), by setting name."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("setting")}
        return {name: value for name, value in given.items() if value is not None}

    def video(self) -> VideoSettings:
        return VideoSettings(self.frames, self.fps, self.min_pixels, self.max_pixels)

    def cache(self) -> FrameCache | None:
        """The frame cache asked for (None with ``--no-frame-cache``)."""
        from adaspark_eval.data.frame_cache import FrameCache, gb_to_bytes

        if self.no_frame_cache:
            if self.frame_cache is not None:
                raise fail("--frame-cache and --no-frame-cache contradict each other: pass one of them")
            return None
        return FrameCache(self.frame_cache, gb_to_bytes(self.frame_cache_max_gb))

    def worker_count(self) -> int:
        from adaspark_eval.lmms.model import auto_workers

        if self.workers is not None and self.workers < 0:
            raise fail(f"--workers {self.workers}: pass 0 (decode in this process) or more worker processes")
        return auto_workers() if self.workers is None else self.workers


@dataclass
class Prepared:
    """What ``prepare`` checked and built: the benchmarks, their data root, the grid and the method."""

    benchmarks: list[Benchmark]
    root: Path
    points: list[SweepPoint]
    method: Method
    frame_cache: FrameCache | None
    workers: int

    @property
    def names(self) -> str:
        return "+".join(b.name for b in self.benchmarks)


def resolve_root(benchmarks: list[Benchmark], given: Path | None) -> Path:
    """The data root; with none given for VideoNIAH alone, the generated offline demo set."""
    from adaspark_eval.datasets import data_root
    from adaspark_eval.datasets.demo import demo_root

    if given is None and [b.name for b in benchmarks] == ["videoniah"]:
        root = demo_root()
        typer.secho(f"no --data-root: using the generated VideoNIAH demo set at {root}", err=True)
        return root
    return data_root(given)


def prepare(knobs: dict[str, str], options: RunOptions, single: bool) -> Prepared:
    """Everything that needs no model, checked in order: the knobs (one point when ``single``, else a grid),
    the tasks and their data, the method and its settings. Raises the user errors ``friendly`` turns into one
    line."""
    from adaspark_eval.datasets import parse_tasks
    from adaspark_eval.evaluation.runner import check_data
    from adaspark_eval.evaluation.sweep import grid, with_methods
    from adaspark_eval.models.loading import check_checkpoint, check_device, check_family_options
    from adaspark_eval.results.store import check_writable

    points = with_methods(grid(knobs), options.method, options.peer_settings())  # bad settings stop here
    if single and len(points) > 1:
        raise fail(f"{len(points)} configs given ({', '.join(p.name for p in points)}): "
                   "use `adaspark-eval sweep` for lists of values")
    benchmarks = parse_tasks(options.task)
    root = resolve_root(benchmarks, options.data_root)
    for check in check_data(benchmarks, root):
        if check.missing:
            typer.secho(f"warning: {check.benchmark}: {len(check.missing)} of {check.videos} videos missing; "
                        f"their samples are recorded as errors (adaspark-eval data check --task {check.benchmark} "
                        "lists them)", err=True, fg=typer.colors.YELLOW)
    if options.limit is not None and options.limit < 1:
        raise fail(f"--limit {options.limit} evaluates nothing: pass a positive number of samples per task, or "
                   "leave --limit out for all")
    options.video()  # frame and pixel settings that read no video stop here
    if options.output is not None:
        check_writable(options.output)
    check_device(options.device)
    check_kernels([p.method.config(p.config) for p in points], options.device)  # as each method runs them
    check_checkpoint(options.model)  # config.json, architecture and weights, before the model loads
    check_family_options(options.model, options.fused_ops, options.batched_vision, options.decode)
    from adaspark_eval.lmms.model import check_decode

    for point in points:
        check_decode(options.decode, point.method, point.config, options.device_map)
    return Prepared(benchmarks, root, points, points[0].method, options.cache(), options.worker_count())


def check_kernels(configs: list[Any], device: str | None) -> None:
    """``lmms.model.check_kernels`` for every config before the model loads: one ``error:`` line (exit 2) where
    kernels cannot run here, one warning line per distinct config whose ``backend=fa4`` never reaches
    flash-attn-4."""
    from adaspark_eval.lmms.model import check_kernels as check

    notes = []
    for config in configs:
        try:
            note = check(config, device)
        except ValueError as error:
            raise fail(str(error)) from None
        if note and note not in notes:
            notes.append(note)
            typer.secho(f"warning: {note}", err=True, fg=typer.colors.YELLOW)


def load_lmm(prepared: Prepared, options: RunOptions) -> AdaSparkLMM:
    """The model of the first point (a sweep switches knobs between points without reloading)."""
    from adaspark_eval.lmms.model import AdaSparkLMM

    return AdaSparkLMM(pretrained=options.model, config=prepared.points[0].config, method=prepared.method,
                       video=options.video(), device=options.device, device_map=options.device_map,
                       dtype=options.dtype, fused_ops=options.fused_ops, batched_vision=options.batched_vision,
                       decode=options.decode,
                       workers=prepared.workers,
                       frame_cache=prepared.frame_cache)


@with_knobs(parse=False)
@with_options(RunOptions, "options")
@friendly
def run_command(
    knobs: dict[str, str],
    options: RunOptions,
    num_processes: Annotated[int, typer.Option(
        help="processes, one per device, samples shared out among them (docs/multi-gpu.md)")] = 1,
) -> None:
    """Check the data, evaluate one config through lmms-eval, write samples.jsonl and summary.json."""
    from adaspark_eval.evaluation.runner import evaluate
    from adaspark_eval.models.parallel import launch, leave, world_size

    with outside_root_allowed(options.allow_outside_root):
        prepared = prepare(knobs, options, single=True)
        if options.device_map is not None and num_processes > 1:
            raise fail("--device-map splits one process's model over GPUs; with --num-processes each process holds "
                       "one GPU: pass one of them")
        if num_processes > 1 and world_size() == 1:  # the launcher: the same command in each process
            raise typer.Exit(launch(num_processes, sys.argv[1:]))
        with loaded(prepared, options) as lm:
            folder = options.output or Path("results") / f"{prepared.names}-{lm.config_key}"
            lm.store = lm.open_store(folder)
            evaluate(lm, prepared.benchmarks, prepared.root, limit=options.limit)
        if lm.rank == 0:
            _print_overview(folder)
        leave()


@with_knobs(parse=False)
@with_options(RunOptions, "options")
@friendly
def sweep_command(
    knobs: dict[str, str],
    options: RunOptions,
    share: Annotated[bool, typer.Option(help="decode and encode each video once for all points "
                                             "(--no-share: once per point, for latency comparisons)")] = True,
) -> None:
    """Evaluate a grid of configs (comma-separated values on any knob), one run folder each; each video is
    decoded and encoded once for all points."""
    from adaspark_eval.evaluation.sweep import sweep
    from adaspark_eval.models.parallel import world_size
    from adaspark_eval.results.store import RunLock

    with outside_root_allowed(options.allow_outside_root):
        prepared = prepare(knobs, options, single=False)
        if world_size() > 1:
            raise fail("sweep runs in one process: evaluate its points with `run --num-processes`")
        with loaded(prepared, options) as lm:
            tag = short_hash("|".join(lm.config_key + p.name for p in prepared.points), length=8)
            folder = options.output or Path("results") / f"sweep-{prepared.names}-{tag}"
            with RunLock(folder):
                sweep(lm, prepared.benchmarks, prepared.root, prepared.points, folder, limit=options.limit,
                      share=share)
        _print_overview(folder)


@contextmanager
def loaded(prepared: Prepared, options: RunOptions) -> Iterator[AdaSparkLMM]:
    """The model (``load_lmm``), with a ``--output`` folder claimed before it loads and its decode-ahead
    workers stopped when the block ends."""
    with _locked(options.output):
        lm = load_lmm(prepared, options)
        try:
            yield lm
        finally:
            lm.close()


def _locked(folder: Path | None) -> AbstractContextManager[Any]:
    """The lock of a run folder given by ``--output``, held by this process (rank 0 under a launcher);
    a folder chosen from the config key is locked by ``evaluate`` once the model has loaded."""
    from adaspark_eval.results.store import RunLock

    if folder is None or int(os.environ.get("RANK", "0")) != 0:
        return nullcontext()
    return RunLock(folder)


def _print_overview(folder: Path) -> None:
    """Per task, the headline table of ``report table`` for the runs under ``folder`` (score, FLOPs,
    latency)."""
    from adaspark_eval.reporting.aggregate import ordered_tasks
    from adaspark_eval.reporting.load import load_results
    from adaspark_eval.reporting.render import render
    from adaspark_eval.reporting.tables import FLOPS_NOTE, task_table

    results = load_results(folder)
    for warning in results.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    for task in ordered_tasks(results.samples["task"]):
        title = f"{task}: score (%, {results.rule(task)} rule) and cost ({FLOPS_NOTE})"
        typer.echo(render({title: task_table(results, task)}, "markdown"))
    typer.echo(f"results: {folder}")
