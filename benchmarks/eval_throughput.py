"""End-to-end evaluation throughput on one GPU: lmms-eval's stock chat ``qwen2_5_vl`` class against this
harness (``AdaSparkLMM`` through ``evaluation.runner.evaluate``) on the same Video-MME-shaped data and the same
random-weight Qwen2.5-VL-7B checkpoint (``eval_setup.py`` makes both on the machine).

    PYTHONPATH=. python3 benchmarks/eval_throughput.py --out DIR --sections setup,stock --frames 32 64 [--limit N]
    PYTHONPATH=. python3 benchmarks/eval_throughput.py --out DIR --sections harness,decoders --frames 32

Sections (each adds to ``DIR/eval_throughput.json``, then ``DIR/EVAL_THROUGHPUT.md`` is written again from it):
  setup     ``DIR/data`` (videos + annotation) and ``DIR/checkpoint``; skipped when both exist (``--force-setup``).
  stock     row a: the stock class, instantiated here and passed to ``simple_evaluate`` as ``model=``.
  harness   rows b-e: ``AdaSparkLMM`` at p=1 serial (b), p=1 with decode-ahead workers and a cold frame cache (c),
            fixed_ratio=0.5 select=cube with that cache warm (d), fixed_ratio=0.5 select=token / cube with
            workers and the cache warm (e-token, e-cube); f, g: c and d with ``--batched-vision``; c-fast,
            d-fast: c (cache cold) and d (warm) with ``--batched-vision --decode graph`` (``HARNESS_ROWS``).
  decoders  decord against torchcodec (CPU, and CUDA where its build has it) on the sampled frame indices of a few
            videos: frames per second, and whether the frames are bit-identical. Runs in a child process that
            alone sees torchcodec (``--torchcodec-path``): qwen_vl_utils prefers torchcodec to decord once it
            can import it, which would change the rows.

Per row: samples per minute over the answering window (the wall time of ``generate_until``; model load
excluded), the GPU's busy fraction over that window (NVML utilisation sampled by a thread: the share of time a
kernel ran), the seconds to the first answer with the rate and GPU busy fraction after it, the time of each
stage (summed over samples), and the peak CPU memory of this process and its children (psutil, sampled).
Stages of the stock row are timed here by wrapping its ``process_vision_info`` (decode), its processor call,
and forward hooks on the vision tower and the language model (measurement only; each synchronises the GPU, as
``generate`` does anyway); stages of the harness rows are the ``latency`` dicts of its run folder's records.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import multiprocessing
import os
import shlex
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# qwen_vl_utils reads videos with torchcodec whenever it can import it; every row here reads with decord (the
# stock setup); the variable is read when qwen_vl_utils is first imported.
os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
sys.path.insert(0, str(Path(__file__).parent))
import eval_setup  # noqa: E402 - a sibling benchmark script

REPO = Path(__file__).resolve().parents[1]
TASK = "videomme_local"
SECTIONS = ("setup", "stock", "harness", "decoders")
# Columns of the stage table, in pipeline order; "other" is the answering window less their sum.
STAGES = ("decode_s", "cache_s", "processor_s", "wait_s", "vision_s", "llm_prefill_s", "decode_steps_s")


@dataclass(frozen=True)
class HarnessRow:
    """One harness configuration: AdaSpark ``knobs``, decode-ahead ``workers`` (None: the ``--workers``
    argument) and the frame cache (``none``, ``cold``: a fresh folder, ``warm``: the folder a cold row filled)."""

    row: str
    label: str
    knobs: dict[str, Any]
    workers: int | None
    cache: str
    batched_vision: bool = False
    decode: str = "generate"


HARNESS_ROWS = (
    HarnessRow("b", "AdaSpark p=1, serial (workers=0), no frame cache", {"p": 1.0}, 0, "none"),
    HarnessRow("c", "AdaSpark p=1, decode-ahead workers, frame cache cold", {"p": 1.0}, None, "cold"),
    HarnessRow("d", "fixed_ratio=0.5 select=cube, workers, frame cache warm",
               {"fixed_ratio": 0.5, "select": "cube"}, None, "warm"),
    HarnessRow("e-token", "fixed_ratio=0.5 select=token, workers, frame cache warm",
               {"fixed_ratio": 0.5, "select": "token"}, None, "warm"),
    HarnessRow("e-cube", "fixed_ratio=0.5 select=cube, workers, frame cache warm",
               {"fixed_ratio": 0.5, "select": "cube"}, None, "warm"),
    HarnessRow("f", "AdaSpark p=1, workers, frame cache warm, --batched-vision", {"p": 1.0}, None, "warm", True),
    HarnessRow("g", "fixed_ratio=0.5 select=cube, workers, frame cache warm, --batched-vision",
               {"fixed_ratio": 0.5, "select": "cube"}, None, "warm", True),
    HarnessRow("c-fast", "as c (cache cold) with --batched-vision --decode graph", {"p": 1.0}, None, "cold", True,
               "graph"),
    HarnessRow("d-fast", "as d (fixed_ratio=0.5 select=cube, cache warm) with --batched-vision --decode graph",
               {"fixed_ratio": 0.5, "select": "cube"}, None, "warm", True, "graph"),
)
# Rows judged against the targets, with the factor over row a: the rows as the issue names them, and the
# same rows with this harness's opt-in GPU paths (--batched-vision --decode graph).
TARGET_ROWS = (("c", 3.0), ("d", 5.0), ("c-fast", 3.0), ("d-fast", 5.0))


# ---------------------------------------------------------------------------------------------- measuring


class Monitor:
    """A thread sampling, every ``interval`` s, the GPU's utilisation (NVML: percent of the last sample period
    in which a kernel ran; None without NVML) and the resident memory of this process and its children.

    ``samples``: (perf_counter time, GPU percent or None, RSS bytes).
    """

    def __init__(self, interval: float = 0.1, gpu: int = 0) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float | None, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._handle: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(gpu)
            self.device = pynvml.nvmlDeviceGetName(self._handle)
        except Exception as error:  # no NVML (CPU machine): memory only
            self.device = f"no NVML ({type(error).__name__})"

    def _gpu_percent(self) -> float | None:
        if self._handle is None:
            return None
        import pynvml

        return float(pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)

    def _rss(self) -> int:
        import psutil

        process = psutil.Process()
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # the child ended between listing and reading
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self._gpu_percent(), self._rss()))
            self._stop.wait(self.interval)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def window_stats(samples: Sequence[tuple[float, float | None, int]], start: float, end: float) -> dict[str, Any]:
    """GPU busy fraction (mean utilisation of the samples taken in [start, end], over 100; None when no sample
    there has one) and peak RSS in GiB over that window."""
    inside = [s for s in samples if start <= s[0] <= end]
    gpu = [s[1] for s in inside if s[1] is not None]
    return {"gpu_busy": round(sum(gpu) / len(gpu) / 100, 3) if gpu else None,
            "peak_rss_gib": round(max(s[2] for s in inside) / 2**30, 2) if inside else None,
            "monitor_samples": len(inside)}


class AnswerWindow:
    """Times the model's ``generate_until`` (the answering window), by an instance attribute that shadows the
    method lmms-eval's evaluator looks up; ``start`` / ``end``: perf_counter times of the (last) call."""

    def __init__(self, lm: Any) -> None:
        self.start = self.end = 0.0
        self.requests = 0
        self.finished: list[float] = []  # perf_counter time each sample's answer was ready (``answered``)
        method = lm.generate_until

        def timed(requests: list[Any]) -> list[Any]:
            self.start = time.perf_counter()
            try:
                return method(requests)
            finally:
                self.end = time.perf_counter()
                self.requests += len(requests)

        lm.generate_until = timed

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def answered(self) -> None:
        """Mark one sample answered now."""
        self.finished.append(time.perf_counter())

    def steady(self, samples: Sequence[tuple[float, float | None, int]]) -> dict[str, Any]:
        """The start-up (window start to the first answer) and the rate and GPU busy fraction after it."""
        if len(self.finished) < 2:
            return {}
        first = self.finished[0]
        stats = window_stats(samples, first, self.end)
        return {"first_sample_s": round(first - self.start, 2),
                "steady_samples_per_min": round((len(self.finished) - 1) / (self.end - first) * 60, 2),
                "steady_gpu_busy": stats["gpu_busy"]}


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class _TimedCall:
    """``target`` with its ``__call__`` timed into ``stages.current[key]``; other attributes pass through."""

    def __init__(self, target: Any, stages: StockStages, key: str) -> None:
        self._target, self._stages, self._key = target, stages, key

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._target(*args, **kwargs)
        finally:
            self._stages.add(self._key, time.perf_counter() - start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@dataclass
class StockStages:
    """Per-sample stage times of the stock class (batch size 1), by wrapping, in this process only, its module's
    ``process_vision_info`` (decode: decord read and resize), its processor call, its model's ``generate``
    (total), and forward hooks on the vision tower (vision) and the language model (its first forward of a
    ``generate`` ends the prefill). ``samples``: one dict per sample, keys as the harness records' ``latency``
    (``decode_s``, ``processor_s``, ``vision_s``, ``prefill_s`` from the start of ``generate`` to the end of the
    prefill, vision included, ``total_s`` of ``generate``)."""

    samples: list[dict[str, float]] = field(default_factory=list)
    _undo: list[Callable[[], None]] = field(default_factory=list)
    _generate_start: float = 0.0
    _vision_start: float = 0.0

    @property
    def current(self) -> dict[str, float]:
        return self.samples[-1]

    def add(self, key: str, seconds: float) -> None:
        self.current[key] = self.current.get(key, 0.0) + seconds

    def install(self, lm: Any, module: Any, window: AnswerWindow | None = None) -> None:
        decode = module.process_vision_info

        def timed_decode(*args: Any, **kwargs: Any) -> Any:
            self.samples.append({})  # one process_vision_info call per sample at batch size 1
            start = time.perf_counter()
            try:
                return decode(*args, **kwargs)
            finally:
                self.add("decode_s", time.perf_counter() - start)

        module.process_vision_info = timed_decode
        self._undo.append(lambda: setattr(module, "process_vision_info", decode))
        processor = lm.processor
        lm.processor = _TimedCall(processor, self, "processor_s")
        self._undo.append(lambda: setattr(lm, "processor", processor))
        model = lm.model
        generate = model.generate

        def timed_generate(*args: Any, **kwargs: Any) -> Any:
            _synchronize()
            self._generate_start = time.perf_counter()
            try:
                return generate(*args, **kwargs)
            finally:
                _synchronize()
                self.add("total_s", time.perf_counter() - self._generate_start)
                if window is not None:
                    window.answered()

        model.generate = timed_generate
        self._undo.append(lambda: delattr(model, "generate"))
        visual, language = model.model.visual, model.model.language_model
        handles = [visual.register_forward_pre_hook(self._vision_begin), visual.register_forward_hook(self._vision_end),
                   language.register_forward_hook(self._language_end)]
        self._undo.extend(handle.remove for handle in handles)

    def _vision_begin(self, module: Any, args: Any) -> None:
        _synchronize()
        self._vision_start = time.perf_counter()

    def _vision_end(self, module: Any, args: Any, output: Any) -> None:
        _synchronize()
        self.add("vision_s", time.perf_counter() - self._vision_start)

    def _language_end(self, module: Any, args: Any, output: Any) -> None:
        if self.samples and "prefill_s" not in self.current:
            _synchronize()
            self.current["prefill_s"] = time.perf_counter() - self._generate_start

    def remove(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def stage_breakdown(latency: dict[str, Any]) -> dict[str, float]:
    """The table's stages of one sample from a ``latency`` dict (missing keys count 0): ``prefill_s`` runs
    from the start of ``generate`` to the end of the prefill forward and so holds ``vision_s``; the LLM
    prefill is the rest of it; decode steps are what ``total_s`` (of ``generate``) adds after the prefill."""
    value = {key: float(latency.get(key) or 0.0) for key in ("decode_s", "cache_s", "processor_s", "wait_s",
                                                             "vision_s", "prefill_s", "total_s")}
    return {"decode_s": value["decode_s"], "cache_s": value["cache_s"], "processor_s": value["processor_s"],
            "wait_s": value["wait_s"],
            "vision_s": value["vision_s"], "llm_prefill_s": max(value["prefill_s"] - value["vision_s"], 0.0),
            "decode_steps_s": max(value["total_s"] - value["prefill_s"], 0.0)}


def summarise(row: str, label: str, frames: int, latencies: Sequence[dict[str, Any]], window_s: float,
              stats: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One table row: samples per minute over the answering window, stage totals (s) and their shares of the
    window, ``other_s`` = window less the stages (negative when stages overlap, as decode-ahead does)."""
    stages = {key: 0.0 for key in STAGES}
    for latency in latencies:
        for key, seconds in stage_breakdown(latency).items():
            stages[key] += seconds
    samples = len(latencies)
    return {
        "row": row, "label": label, "frames": frames, "samples": samples, "window_s": round(window_s, 3),
        "samples_per_min": round(samples / window_s * 60, 2) if window_s > 0 else None,
        "stages_s": {key: round(value, 3) for key, value in stages.items()},
        "other_s": round(window_s - sum(stages.values()), 3),
        "stage_share": {key: round(value / window_s, 3) for key, value in stages.items()} if window_s > 0 else {},
        **stats, **extra,
    }


# ---------------------------------------------------------------------------------------------- rows


def run_lmms(lm: Any, data_root: Path, limit: int | None, gen_kwargs: str | None) -> dict[str, Any]:
    """lmms-eval's ``simple_evaluate`` on ``lm`` (an instance) over task ``videomme_local`` of this repo's
    ``tasks/`` folder, data from ``data_root``."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from adaspark_eval.datasets import DATA_ROOT_ENV
    from adaspark_eval.evaluation.runner import environment

    with environment(DATA_ROOT_ENV, str(data_root)):
        manager = TaskManager("WARNING", include_path=str(REPO / "tasks"), include_defaults=False)
        return simple_evaluate(model=lm, tasks=[TASK], limit=limit, gen_kwargs=gen_kwargs, task_manager=manager,
                               log_samples=False, bootstrap_iters=0, verbosity="WARNING")


def stock_row(checkpoint: Path, data_root: Path, frames: int, limit: int | None, gen_kwargs: str | None,
              monitor: Monitor, device: str = "cuda") -> dict[str, Any]:
    """Row a: lmms-eval's stock chat ``qwen2_5_vl`` class at ``max_num_frames=frames`` and the harness's pixel
    bounds (``data.video.VideoSettings``)."""
    import lmms_eval.models.chat.qwen2_5_vl as stock

    from adaspark_eval.data.video import VideoSettings

    start = time.perf_counter()
    lm = stock.Qwen2_5_VL(pretrained=str(checkpoint), device=device, device_map=_device_map(device),
                          max_num_frames=frames, min_pixels=VideoSettings.min_pixels,
                          max_pixels=VideoSettings.max_pixels, attn_implementation="sdpa")
    load_s = time.perf_counter() - start
    stages = StockStages()
    window = AnswerWindow(lm)
    stages.install(lm, stock, window)
    try:
        run_lmms(lm, data_root, limit, gen_kwargs)
    finally:
        stages.remove()
    row = summarise("a", "lmms-eval stock qwen2_5_vl (chat)", frames, stages.samples, window.seconds,
                    window_stats(monitor.samples, window.start, window.end), load_s=round(load_s, 2),
                    **window.steady(monitor.samples))
    _release(lm)
    return row


def _device_map(device: str) -> str:
    return "cuda:0" if device == "cuda" else device


def make_harness_model(checkpoint: Path, frames: int, knobs: dict[str, Any], workers: int, frame_cache: str | None,
                       output: Path, device: str = "cuda", batched_vision: bool = False,
                       decode: str = "generate") -> Any:
    """The ``AdaSparkLMM`` of one harness row (the one place to adjust when its constructor changes)."""
    from adaspark_eval.config import AdaSparkConfig
    from adaspark_eval.data.frame_cache import FrameCache
    from adaspark_eval.data.video import VideoSettings
    from adaspark_eval.lmms.model import AdaSparkLMM

    return AdaSparkLMM(pretrained=str(checkpoint), device=device, dtype="bfloat16", output=str(output),
                       config=AdaSparkConfig(**knobs), video=VideoSettings(max_num_frames=frames), workers=workers,
                       frame_cache=None if frame_cache is None else FrameCache(frame_cache),
                       batched_vision=batched_vision, decode=decode)


def harness_row(spec: HarnessRow, checkpoint: Path, data_root: Path, frames: int, limit: int | None,
                gen_kwargs: str | None, workers: int, runs: Path, monitor: Monitor,
                device: str = "cuda") -> dict[str, Any]:
    """One harness row through ``evaluation.runner.evaluate``, into a fresh run folder; stages from its records."""
    from adaspark_eval.datasets import get_benchmark
    from adaspark_eval.evaluation.runner import evaluate
    from adaspark_eval.results.store import SAMPLES, read_samples

    output = runs / f"{spec.row}-f{frames}"
    shutil.rmtree(output, ignore_errors=True)
    cache = runs / f"frame_cache-f{frames}"
    if spec.cache == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    frame_cache = None if spec.cache == "none" else str(cache)
    row_workers = workers if spec.workers is None else spec.workers
    start = time.perf_counter()
    lm = make_harness_model(checkpoint, frames, spec.knobs, row_workers, frame_cache, output, device,
                            spec.batched_vision, spec.decode)
    load_s = time.perf_counter() - start
    window = AnswerWindow(lm)
    answer = lm.answer

    def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return answer(*args, **kwargs)
        finally:
            window.answered()

    lm.answer = answered
    evaluate(lm, [get_benchmark("videomme")], data_root, limit=limit, gen_kwargs=gen_kwargs)
    records = read_samples(output / SAMPLES)
    errors = [r["error"] for r in records if r.get("error")]
    row = summarise(spec.row, spec.label, frames, [r.get("latency") or {} for r in records if not r.get("error")],
                    window.seconds, window_stats(monitor.samples, window.start, window.end), load_s=round(load_s, 2),
                    workers=row_workers, frame_cache=spec.cache, knobs=spec.knobs, errors=errors[:3],
                    error_count=len(errors),
                    latency_keys=sorted({key for r in records for key in (r.get("latency") or {})}),
                    decode=spec.decode, batched_vision=spec.batched_vision, **window.steady(monitor.samples))
    _release(lm)
    return row


def _release(lm: Any) -> None:
    """Drop a model and give its GPU memory back before the next row loads one."""
    close = getattr(lm, "close", None)
    if callable(close):
        close()
    del lm
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------- decoders


# torchcodec decoders compared with decord (which qwen_vl_utils opens with its default, automatic thread count).
TORCHCODEC_VARIANTS: dict[str, dict[str, Any]] = {
    "torchcodec_cpu": {"device": "cpu", "seek_mode": "exact"},  # one FFmpeg thread (torchcodec's default)
    "torchcodec_cpu_threads": {"device": "cpu", "seek_mode": "exact", "num_ffmpeg_threads": 0},  # automatic
    "torchcodec_cpu_approx": {"device": "cpu", "seek_mode": "approximate"},
    "torchcodec_cuda": {"device": "cuda", "seek_mode": "exact"},
}


def decoder_comparison(videos: Sequence[str], frame_counts: Sequence[int], torchcodec_path: str | None,
                       repeats: int = 2) -> dict[str, Any]:
    """decord (as qwen_vl_utils opens it) against torchcodec's CPU decoder (and CUDA decoder when it has one) on
    each video's uniformly sampled indices (``data.video.sample_indices``): best-of-``repeats`` seconds,
    frames/s, and agreement with decord's frames. Runs in a spawned child that has ``torchcodec_path`` first
    on ``sys.path``."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_decoders_child, (list(videos), list(frame_counts), torchcodec_path, repeats))


def _decoders_child(videos: list[str], frame_counts: list[int], torchcodec_path: str | None,
                    repeats: int) -> dict[str, Any]:
    if torchcodec_path:
        sys.path.insert(0, torchcodec_path)
    import decord

    from adaspark_eval.data.video import sample_indices

    result: dict[str, Any] = {"rows": []}
    try:
        import torchcodec
        from torchcodec.decoders import VideoDecoder

        result["torchcodec"] = getattr(torchcodec, "__version__", "?")
    except Exception as error:
        VideoDecoder = None
        result["torchcodec_error"] = _one_line(error)

    def best(read: Callable[[], Any]) -> tuple[float, Any]:
        times, out = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            out = read()
            times.append(time.perf_counter() - start)
        return min(times), out

    for path in videos:
        total = len(decord.VideoReader(path))
        for count in frame_counts:
            indices = sample_indices(total, count).tolist()
            row: dict[str, Any] = {"video": Path(path).name, "total_frames": total, "frames": len(indices)}
            seconds, reference = best(lambda: decord.VideoReader(path).get_batch(indices).asnumpy())
            row["decord_s"], row["decord_fps"] = round(seconds, 3), round(len(indices) / seconds, 1)
            for name, options in TORCHCODEC_VARIANTS.items():
                if VideoDecoder is None:
                    continue
                try:
                    seconds, frames = best(lambda: VideoDecoder(path, **options)
                                           .get_frames_at(indices=indices).data.permute(0, 2, 3, 1).cpu().numpy())
                except Exception as error:
                    row[f"{name}_error"] = _one_line(error)
                    continue
                row[f"{name}_s"], row[f"{name}_fps"] = round(seconds, 3), round(len(indices) / seconds, 1)
                row[f"{name}_agreement"] = frame_agreement(reference, frames)
            result["rows"].append(row)
    return result


def _one_line(error: BaseException) -> str:
    text = str(error).splitlines()[0][:300] if str(error) else ""
    return f"{type(error).__name__}: {text}"


def frame_agreement(reference: Any, frames: Any) -> dict[str, Any]:
    """How ``frames`` match ``reference`` (both (T, H, W, 3) uint8): bit-identical, share of differing values,
    largest and mean absolute difference."""
    import numpy as np

    if reference.shape != frames.shape:
        return {"identical": False, "shape": [list(reference.shape), list(frames.shape)]}
    diff = np.abs(reference.astype(np.int16) - frames.astype(np.int16))
    return {"identical": bool((diff == 0).all()), "differing_share": round(float((diff > 0).mean()), 5),
            "max_abs_diff": int(diff.max()), "mean_abs_diff": round(float(diff.mean()), 4)}


# ---------------------------------------------------------------------------------------------- report


def target_checks(rows: Sequence[dict[str, Any]], frames: int = 32) -> list[dict[str, Any]]:
    """The issue's targets at ``frames`` frames: c >= 3x the samples/min of a, d >= 5x a, GPU busy >= 80% in c
    and d. ``met`` is None when a row is missing."""
    by_row = {row["row"]: row for row in rows if row["frames"] == frames}

    def ratio(top: str, base: str) -> float | None:
        a, b = by_row.get(top, {}).get("samples_per_min"), by_row.get(base, {}).get("samples_per_min")
        return round(a / b, 2) if a and b else None

    def steady_ratio(top: str, base: str) -> float | None:
        a, b = (by_row.get(name, {}).get("steady_samples_per_min") for name in (top, base))
        return round(a / b, 2) if a and b else None

    checks = []
    for top, factor in TARGET_ROWS:
        if top not in by_row and top not in ("c", "d"):
            continue
        value = ratio(top, "a")
        checks.append({"target": f"({top}) >= {factor:g}x samples/min of (a) at {frames} frames", "value": value,
                       "met": None if value is None else value >= factor, "row": top, "frames": frames,
                       "steady": steady_ratio(top, "a")})
    for top, _ in TARGET_ROWS:
        if top not in by_row and top not in ("c", "d"):
            continue
        busy = by_row.get(top, {}).get("gpu_busy")
        checks.append({"target": f"GPU busy >= 80% in ({top}) at {frames} frames", "value": busy,
                       "met": None if busy is None else busy >= 0.8, "row": top, "frames": frames,
                       "steady": by_row.get(top, {}).get("steady_gpu_busy")})
    return checks


def where_time_goes(row: dict[str, Any]) -> str:
    """The row's stages by share of its answering window, largest first."""
    shares = sorted(row.get("stage_share", {}).items(), key=lambda item: -item[1])
    parts = [f"{key[:-2].replace('_', ' ')} {share:.0%}" for key, share in shares if share >= 0.01]
    other = row.get("other_s")
    if other is not None and row.get("window_s"):
        parts.append(f"other {other / row['window_s']:.0%}")
    return ", ".join(parts)


def render_markdown(result: dict[str, Any]) -> str:
    """``EVAL_THROUGHPUT.md`` from the json ``result``."""
    lines = ["# End-to-end evaluation throughput", "",
             f"Device: {result.get('device', '?')}. Date: {result.get('date', '?')}.", "", "Commands:", ""]
    lines += [f"    {command}" for command in result.get("commands", [])]
    setup = result.get("setup")
    if setup:
        dataset = setup.get("dataset", {})
        videos = dataset.get("videos", [])
        steps = setup.get("checkpoint_steps", {})
        lines += ["", "## Setup", ""]
        if dataset:
            lines.append(f"Data: {len(videos)} videos, {dataset.get('questions', '?')} questions; encoded in "
                         f"{dataset.get('encode_wall_s', '?')} s by {dataset.get('processes', '?')} processes (x264 "
                         f"veryfast, crf {dataset.get('crf', '?')}); bitrates "
                         f"{_span([v['mbit_per_s'] for v in videos])} Mbit/s, lengths "
                         f"{_span([round(v['seconds'] / 60, 1) for v in videos])} min.")
        if steps:
            lines.append(f"Checkpoint: {steps.get('layers', '?')} decoder layers, "
                         f"{steps.get('parameters', 0) / 1e9:.2f} B parameters, built on the GPU in "
                         f"{steps.get('build_s', '?')} s, saved in "
                         f"{steps.get('save_s', '?')} s ({steps.get('bytes', 0) / 1e9:.1f} GB).")
    rows = sorted(result.get("rows", []), key=lambda r: (r["frames"], r["row"]))
    if rows:
        lines += ["", "## Rows", "",
                  "Stage columns: seconds summed over the samples (decode-ahead overlaps them with the GPU, so they "
                  "can add up to more than the window); LLM prefill excludes the vision encoder.", "",
                  "| row | frames | samples | window s | samples/min | GPU busy | first sample s | samples/min after "
                  "it | GPU busy after it | peak RSS GiB | decode | frame cache | processor | wait | vision | "
                  "LLM prefill | decode steps | other | setting |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            stages = row.get("stages_s", {})
            busy = row.get("gpu_busy")
            lines.append(
                f"| {row['row']} | {row['frames']} | {row['samples']} | {row['window_s']:.1f} | "
                f"{row.get('samples_per_min')} | {_share(busy)} | {row.get('first_sample_s', '-')} | "
                f"{row.get('steady_samples_per_min', '-')} | {_share(row.get('steady_gpu_busy'))} | "
                f"{row.get('peak_rss_gib')} | " + " | ".join(f"{stages.get(key, 0):.1f}" for key in STAGES)
                + f" | {row.get('other_s', 0):.1f} | {row['label']} |")
        errors = [row for row in rows if row.get("error_count")]
        for row in errors:
            lines.append(f"\nRow {row['row']} ({row['frames']} frames): {row['error_count']} sample errors, e.g. "
                         f"{row['errors'][:1]}")
    for name, error in result.get("section_errors", {}).items():
        lines += ["", f"Section {name} failed: `{error.splitlines()[0][:300]}`"]
    checks = result.get("targets", [])
    if checks:
        by_key = {(r["row"], r["frames"]): r for r in rows}
        lines += ["", "## Targets", ""]
        for check in checks:
            state = "not measured" if check["met"] is None else "met" if check["met"] else "MISSED"
            line = f"- {check['target']}: {check['value']} -- {state}"
            if check.get("steady") is not None:
                line += f" (after the first sample: {check['steady']})"
            row = by_key.get((check["row"], check.get("frames", 32)))
            if check["met"] is False and row is not None:
                line += f". Where the time goes in ({row['row']}): {where_time_goes(row)}"
            lines.append(line)
    decoders = result.get("decoders")
    if decoders:
        lines += ["", "## Decoders", "", f"torchcodec {decoders.get('torchcodec', decoders.get('torchcodec_error'))}.",
                  "", "| video | frames of | sampled | decord fps | torchcodec CPU fps | identical | max diff | "
                  "torchcodec CPU auto-threads fps | torchcodec CPU approx fps | torchcodec CUDA fps |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in decoders.get("rows", []):
            agreement = row.get("torchcodec_cpu_agreement", {})
            lines.append(
                f"| {row['video']} | {row['total_frames']} | {row['frames']} | {row['decord_fps']} | "
                f"{row.get('torchcodec_cpu_fps', row.get('torchcodec_cpu_error', '-'))} | "
                f"{agreement.get('identical', '-')} | {agreement.get('max_abs_diff', '-')} | "
                f"{row.get('torchcodec_cpu_threads_fps', '-')} | {row.get('torchcodec_cpu_approx_fps', '-')} | "
                f"{row.get('torchcodec_cuda_fps', row.get('torchcodec_cuda_error', '-'))} |")
    return "\n".join(lines) + "\n"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _span(values: Sequence[float]) -> str:
    return f"{min(values)}-{max(values)}" if values else "?"


def merge_rows(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` rows with those of ``new`` replacing the ones of the same (row, frames)."""
    keys = {(row["row"], row["frames"]) for row in new}
    return [row for row in old if (row["row"], row["frames"]) not in keys] + list(new)


def write_report(out: Path, result: dict[str, Any]) -> None:
    rows = result.get("rows", [])
    result["targets"] = [check for frames in sorted({row["frames"] for row in rows} | {32})
                         for check in target_checks(rows, frames)]
    (out / "eval_throughput.json").write_text(json.dumps(result, indent=1))
    (out / "EVAL_THROUGHPUT.md").write_text(render_markdown(result))


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sections", default="setup,stock,harness",
                        help=f"comma-separated, from {','.join(SECTIONS)}")
    parser.add_argument("--frames", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--limit", type=int, default=None, help="samples per run (default: all)")
    parser.add_argument("--rows", default=",".join(r.row for r in HARNESS_ROWS), help="harness rows to run")
    parser.add_argument("--workers", type=int, default=None,
                        help="decode-ahead workers of rows c-g (default: the harness's own default_workers)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="generation length (default: the task's 16; random weights rarely stop earlier)")
    parser.add_argument("--data", type=Path, default=None, help="data root (default OUT/data)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default OUT/checkpoint)")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--minutes", type=float, nargs=2, default=(2.0, 5.0))
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--layers", type=int, default=None, help="decoder layers of the checkpoint (default 28)")
    parser.add_argument("--force-setup", action="store_true")
    parser.add_argument("--device", default="cuda", help="where the models run (cuda; cpu for a dry run)")
    parser.add_argument("--decoder-videos", type=int, default=3)
    parser.add_argument("--torchcodec-path", default=os.environ.get("TORCHCODEC_PATH"),
                        help="a folder holding torchcodec, seen by the decoders section only")
    args = parser.parse_args(argv)
    if args.workers is None:
        from adaspark_eval.data.prefetch import default_workers

        args.workers = max(1, default_workers())
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}: pick from {', '.join(SECTIONS)}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    data_root = (args.data or out / "data").absolute()
    checkpoint = (args.checkpoint or out / "checkpoint").absolute()
    sections = args.sections.split(",")
    path = out / "eval_throughput.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    result.setdefault("commands", []).append(shlex.join([Path(sys.executable).name, *sys.argv]))
    result["date"] = datetime.date.today().isoformat()
    gen_kwargs = f"max_new_tokens={args.max_new_tokens}" if args.max_new_tokens else None
    with Monitor() as monitor:
        result["device"] = _device_name(monitor)
        steps: dict[str, Callable[[], None]] = {}

        def setup() -> None:
            make_data = args.force_setup or not (data_root / "videomme").is_dir()
            make_checkpoint = args.force_setup or not (checkpoint / "config.json").is_file()
            start = time.perf_counter()
            made = eval_setup.run_setup(data_root if make_data else None, checkpoint if make_checkpoint else None,
                                        args.videos, tuple(args.minutes), args.questions, args.layers,
                                        device=args.device)
            made["total_s"] = round(time.perf_counter() - start, 2)
            if make_data or make_checkpoint:
                result["setup"] = {**result.get("setup", {}), **made}
            print(f"setup: {made['total_s']} s (made: {'data ' if make_data else ''}"
                  f"{'checkpoint' if make_checkpoint else ''}; existing ones kept, --force-setup remakes them)",
                  flush=True)

        def stock() -> None:
            for frames in args.frames:
                row = stock_row(checkpoint, data_root, frames, args.limit, gen_kwargs, monitor, args.device)
                result["rows"] = merge_rows(result.get("rows", []), [row])
                print(f"row a, {frames} frames: {row['samples_per_min']} samples/min", flush=True)
                write_report(out, result)

        def harness() -> None:
            wanted = args.rows.split(",")
            for frames in args.frames:
                for spec in [spec for spec in HARNESS_ROWS if spec.row in wanted]:
                    row = harness_row(spec, checkpoint, data_root, frames, args.limit, gen_kwargs, args.workers,
                                      out / "runs", monitor, args.device)
                    result["rows"] = merge_rows(result.get("rows", []), [row])
                    print(f"row {spec.row}, {frames} frames: {row['samples_per_min']} samples/min", flush=True)
                    write_report(out, result)

        def decoders() -> None:
            videos = sorted((data_root / "videomme" / "data").glob("*.mp4"))[: args.decoder_videos]
            result["decoders"] = decoder_comparison([str(v) for v in videos], args.frames, args.torchcodec_path)

        steps.update(setup=setup, stock=stock, harness=harness, decoders=decoders)
        for name in [name for name in SECTIONS if name in sections]:
            try:
                steps[name]()
            except Exception as error:  # a failed section is recorded; the next ones still run
                traceback.print_exc()
                result.setdefault("section_errors", {})[name] = f"{type(error).__name__}: {error}"[:2000]
            write_report(out, result)
    write_report(out, result)


def _device_name(monitor: Monitor) -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    return f"CPU only ({os.cpu_count()} cores), {monitor.device}"


if __name__ == "__main__":
    main()
