"""lmms-eval model ``adaspark``: Qwen2.5-VL with AdaSpark attached, one sample at a time, every sample
recorded in a run folder (``results.store.RunStore``) as it finishes.

Model args (``--model_args k=v,...``): ``pretrained`` (``tiny``, a checkpoint directory or a cached hub
name), ``device``, ``device_map`` (``auto`` or ``cuda:0;cuda:1``: the model split over those GPUs in this one
process, ``models.placement``), ``dtype``, ``fused_ops`` (``true``: RMSNorm, rotary embedding and
SiLU-and-multiply in fused kernels, ``models.fused``; GPU only), ``batched_vision`` (``models.vision``),
``decode`` (``generate``, or ``graph``: greedy decode steps on a static KV cache replayed as a CUDA graph,
``models.graph_decode``),
``max_num_frames``, ``fps``, ``min_pixels``, ``max_pixels`` (video reading as lmms-eval's stock ``qwen2_5_vl``,
see ``inputs``), ``output`` (run folder; default
``results/<config_key>``), every AdaSpark knob (``p=0.8``, ``cube=4x4x4``, ``dense_layers=0;1``, ...), and
``method`` (``adaspark``, or a peer: ``adaspark_eval.methods``) with its settings (``window=1``, ...),
``workers`` (processes preparing the next samples' inputs: decoding, resizing, the processor; ``0`` = in this
process; default ``auto``, from the CPU count) and ``frame_cache`` (folder of the persistent frame cache,
default ``~/.cache/adaspark-eval/frames``; ``none`` = off) with ``frame_cache_max_gb``. Neither changes a
record (latencies aside), so neither enters the config key.

A sample already in the run folder under the same key (task, sample id, config key) is answered from
there without computing; a stored error is tried again. A missing or undecodable video makes that
sample's record an error with the reason, its prediction the empty string (scored wrong), and the run
goes on.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from adaspark_eval.config import AdaSparkConfig, ConfigError, parse_bool, short_hash
from adaspark_eval.data.frame_cache import DEFAULT_MAX_GB, FrameCache, gb_to_bytes
from adaspark_eval.data.prefetch import Outcome, Prefetcher, WorkerDied, default_workers
from adaspark_eval.data.video import VideoError, VideoSettings
from adaspark_eval.datasets import BENCHMARKS, Benchmark
from adaspark_eval.flops.dims import ModelDims
from adaspark_eval.lmms.inputs import PreparedInputs
from adaspark_eval.lmms.prepare import SampleJob, prepare, size_processor, start_worker
from adaspark_eval.lmms.timing import GenerationTimer
from adaspark_eval.methods import Method, attach, make_method, split_settings
from adaspark_eval.models.graph_decode import DECODE_MODES, GraphDecoder
from adaspark_eval.models.loading import AUTO, check_checkpoint, check_family_options, load_model, model_family
from adaspark_eval.models.memo import SampleMemo
from adaspark_eval.models.parallel import join, world_size
from adaspark_eval.models.placement import parse_devices
from adaspark_eval.models.vision import batch_vision
from adaspark_eval.results.schema import SampleRecord
from adaspark_eval.results.store import RunStore, SampleKey, sample_key

METHOD = "adaspark"
KNOBS = tuple(f.name for f in dataclasses.fields(AdaSparkConfig))
MODEL_ARGS = ("pretrained", "device", "device_map", "dtype", "fused_ops", "batched_vision", "decode", "max_num_frames",
              "fps", "min_pixels", "max_pixels", "output", "method", "workers", "frame_cache", "frame_cache_max_gb")
AUTO_WORKERS = "auto"  # workers=auto: ``data.prefetch.default_workers`` shared among the ranks of this machine


def run_key(config: AdaSparkConfig, model: str, video: VideoSettings, dtype: str, method: Method | None = None,
            fused_ops: bool = False, batched_vision: bool = False, decode: str = DECODE_MODES[0]) -> str:
    """``adaspark-<hash>``: the config key of results; changes with any knob, the model, the video
    reading, the dtype, fused ops, batched vision or the decode loop, so results of another setup are never
    reused."""
    payload: dict[str, Any] = {"knobs": config.key(), "model": model, "video": dataclasses.asdict(video),
                               "dtype": dtype}
    if fused_ops:  # keys of runs without them stay as they were
        payload["fused_ops"] = True
    if batched_vision:
        payload["batched_vision"] = True
    if decode != DECODE_MODES[0]:
        payload["decode"] = decode
    name = method.name if method is not None else METHOD
    if name != METHOD:  # a peer method's settings; AdaSpark runs keep the keys they had before methods
        payload["method"] = {"name": name, **method.settings()}
    return f"{name}-{short_hash(payload)}"


class AdaSparkLMM(lmms):
    """The sparse Qwen2.5-VL as an lmms-eval chat model (``is_simple = False``).

    In Python it takes typed objects: ``AdaSparkLMM(pretrained="tiny", config=AdaSparkConfig(p=0.8),
    method=make_method("fastv", {...}), video=VideoSettings(max_num_frames=16))``. lmms-eval's text
    ``model_args`` are parsed once, at that boundary (``from_model_args``).
    """

    is_simple = False

    def __init__(
        self,
        pretrained: str = AUTO,
        config: AdaSparkConfig | None = None,
        method: Method | None = None,
        video: VideoSettings | None = None,
        device: str | None = None,
        device_map: str | None = None,
        dtype: str = "bfloat16",
        fused_ops: bool = False,
        output: str | Path | None = None,
        workers: int = 0,
        frame_cache: FrameCache | None = None,
        batched_vision: bool = False,
        decode: str = DECODE_MODES[0],
    ) -> None:
        super().__init__()
        if workers < 0:
            raise ValueError(f"workers={workers}: pass 0 (decode in this process) or more worker processes")
        check_decode(decode, method or make_method(METHOD), config or AdaSparkConfig(), device_map)
        self.decode = decode
        self.workers, self.frame_cache = int(workers), frame_cache
        self.method = method or make_method(METHOD)
        self.base_video = video or VideoSettings()  # as given; ``video``: as the method reads videos
        self.dtype = str(dtype)
        self.fused_ops, self.batched_vision = bool(fused_ops), bool(batched_vision)
        devices = self._place(device, device_map)
        check_kernels(self.method.config(config or AdaSparkConfig()), self._device)  # lmms-eval's command line too
        name = check_checkpoint(str(pretrained))  # "auto" resolved: results are keyed by the model really used
        self.family = model_family(name)
        check_family_options(name, self.fused_ops, self.batched_vision, self.decode)
        # decode-ahead workers start first: they import and build their processor while the model loads
        ahead = Prefetcher(prepare, self.workers, initializer=start_worker,
                           initargs=(name, self.base_video, self.frame_cache, self.family)
                           ).start() if self.workers else None
        try:
            self.loaded = load_model(name, device=str(self._device), dtype=self.dtype, devices=devices,
                                     fused_ops=self.fused_ops)
        except BaseException:
            if ahead is not None:
                ahead.close()  # no orphan workers when the model fails to load
            raise
        if self.batched_vision:
            batch_vision(self.loaded.model)
        self.decoder = GraphDecoder(self.loaded.model) if decode == "graph" else None
        self._device = self.loaded.device  # where inputs go: the first GPU of a device map
        self.devices = {parameter.device for parameter in self.loaded.model.parameters()}
        self.model_name = self.loaded.name
        size_processor(self.loaded.processor, self.base_video)
        inline = (self.loaded.processor, self.base_video, self.frame_cache, self.family)  # this process's processor
        # the workers' first items: prepared here while they still import (the first sample is out sooner)
        self.preparer = ahead.help(start_worker, inline) if ahead else Prefetcher(prepare, 0, initializer=start_worker,
                                                                                   initargs=inline)
        self.dims = ModelDims.from_config(self.loaded.model.config)
        self.sparse = attach(self.loaded.model, self.method, config or AdaSparkConfig())  # the one attach
        self._derive()
        self.store = self.open_store(output if output is not None else Path("results") / self.config_key)
        self.shared = SampleMemo()  # one sample's memo; a sweep keeps it across its points
        self.served: list[SampleKey] = []

    def close(self) -> None:
        """Stop the decode-ahead workers (they also stop when this process exits)."""
        self.preparer.close()

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict[str, Any] | None = None) -> AdaSparkLMM:
        """lmms-eval's constructor: ``--model_args`` text (``k=v,...``) plus its own batch size and device."""
        from lmms_eval.utils import simple_parse_args_string

        return cls.from_model_args({**simple_parse_args_string(arg_string),
                                    **{k: v for k, v in (additional_config or {}).items() if v is not None}})

    @classmethod
    def from_model_args(cls, args: dict[str, Any]) -> AdaSparkLMM:
        """The model from lmms-eval ``model_args`` (values as lmms-eval parses them: text, bool, int, float):
        ``MODEL_ARGS``, the method's settings and AdaSpark knobs; ``ValueError`` naming the fix otherwise."""
        args = dict(args)
        batch_size = args.pop("batch_size", 1)
        args.pop("max_batch_size", None)  # passed by lmms-eval's evaluator; one sample at a time here
        if str(batch_size) != "1":
            raise ValueError(f"adaspark runs one sample at a time (batch_size={batch_size}): pass --batch_size 1")
        settings, rest = split_settings(args)
        knobs = {k: v for k, v in rest.items() if k in KNOBS}
        unknown = sorted(set(rest) - set(knobs) - set(MODEL_ARGS))
        if unknown:
            raise ValueError(f"unknown adaspark model arg(s) {unknown}: pass {', '.join(MODEL_ARGS)}, a method "
                             f"setting or an AdaSpark knob ({', '.join(KNOBS)})")
        fps = rest.get("fps")
        workers = rest.get("workers", AUTO_WORKERS)
        workers = auto_workers() if str(workers) == AUTO_WORKERS else int(workers)
        cache_folder = rest.get("frame_cache")
        frame_cache = None if str(cache_folder).lower() in ("none", "off", "false", "0") else FrameCache(
            cache_folder, gb_to_bytes(float(rest.get("frame_cache_max_gb", DEFAULT_MAX_GB))))
        video = VideoSettings(int(rest.get("max_num_frames", VideoSettings.max_num_frames)),
                              None if fps is None else float(fps),
                              int(rest.get("min_pixels", VideoSettings.min_pixels)),
                              int(rest.get("max_pixels", VideoSettings.max_pixels)))
        return cls(pretrained=str(rest.get("pretrained", AUTO)),
                   config=AdaSparkConfig.from_dict({k: _text(v) for k, v in knobs.items()}),
                   method=make_method(str(rest.get("method", METHOD)), {k: _text(v) for k, v in settings.items()}),
                   video=video, device=rest.get("device"), device_map=rest.get("device_map"),
                   dtype=str(rest.get("dtype", "bfloat16")), fused_ops=parse_bool(rest.get("fused_ops", False)),
                   batched_vision=parse_bool(rest.get("batched_vision", False)),
                   decode=str(rest.get("decode", DECODE_MODES[0])),
                   output=rest.get("output"), workers=workers, frame_cache=frame_cache)

    def _place(self, device: str | None, device_map: str | None) -> list[torch.device] | None:
        """This process's device (under a launcher: its rank's), and the GPUs of a device map, if any."""
        devices = parse_devices(str(device_map).replace(";", ",")) if device_map else None
        if devices and world_size() > 1:
            raise ValueError("device_map splits one process's model over several GPUs; under a launcher each process "
                             "holds one GPU: pass --device-map or --num-processes, not both")
        accelerator, self._device = join(device)
        if accelerator is not None:  # lmms-eval's evaluator gathers through it
            self.accelerator = accelerator
            self._rank, self._world_size = accelerator.process_index, accelerator.num_processes
        return devices

    def _derive(self) -> None:
        """What follows from the method and knobs in force: how videos are read, and the results key."""
        self.video = self.method.video(self.base_video, self.dims)
        self.config_key = run_key(self.sparse.config, self.model_name, self.base_video, self.dtype, self.method,
                                  self.fused_ops, self.batched_vision, self.decode)

    def open_store(self, folder: str | Path) -> RunStore:
        """The run folder ``folder`` as this process writes it (its rank's samples file)."""
        return RunStore(folder, rank=self.rank)

    @property
    def config(self) -> AdaSparkConfig:
        return self.sparse.config

    def configure(self, config: AdaSparkConfig, method: Method | None = None) -> None:
        """Switch the AdaSpark knobs and, when given, the method (no reload); later samples are keyed by them."""
        check_decode(self.decode, method or self.method, config)
        check_kernels((method or self.method).config(config), self._device)
        self.method = method or self.method
        self.sparse.config = self.method.config(config)
        self.sparse.rule = self.method.rule(self.sparse)
        self._derive()

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def batch_size(self) -> int:
        return 1

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.loaded.processor.tokenizer

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError("adaspark answers generation tasks only (output_type: generate_until)")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError("adaspark answers single-round generation tasks only")

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Answer each request (``args = (context, doc_to_messages, gen_kwargs, doc_id, task, split)``), its
        inputs prepared ``workers`` processes ahead."""
        answers = []
        for request, prepared in self.prepared(requests, self.pending):
            self.shared.next_sample()
            answers.append(self.answer_request(request, prepared)["prediction"] or "")
        return answers

    def request_ids(self, request: Instance) -> tuple[str, str]:
        """(task, sample id) of a request, as its record names them."""
        _, _, _, doc_id, task, _ = request.args
        return sample_ids(task, doc_id, self.doc(request))

    def pending(self, request: Instance, config_key: str | None = None, store: RunStore | None = None) -> bool:
        """Whether ``request`` still has to be computed under ``config_key`` in ``store`` (default: the
        config and run folder in force): no record, or a stored error (tried again)."""
        stored = (store or self.store).records.get((*self.request_ids(request), config_key or self.config_key))
        return stored is None or stored["error"] is not None

    def prepared(self, requests: Sequence[Instance], pending: Callable[[Instance], bool],
                 desc: str = "adaspark") -> Iterator[tuple[Instance, Prepared | None]]:
        """Each request in order with its inputs, prepared ahead by the workers (``None`` for one that
        ``pending`` says is finished). Shows a progress bar with samples/min and the share of wall time
        spent waiting for data."""
        frames_for = self.method.frames_for(self.base_video, self.dims)
        jobs = (SampleJob(self.messages(r), self.video, frames_for)
                if pending(r) and not self.doc(r).get("path_problem") else None for r in requests)
        progress = tqdm(total=len(requests), desc=desc, unit="sample", disable=self.rank != 0)
        started, waited = time.perf_counter(), 0.0
        outcomes = self.preparer.map(jobs)
        try:
            for request in requests:
                before = time.perf_counter()
                outcome = next(outcomes)[1]
                wait_s = time.perf_counter() - before
                waited += wait_s
                yield request, (None if outcome.ok and outcome.value is None else Prepared(outcome, wait_s))
                progress.update(1)
                elapsed = time.perf_counter() - started
                progress.set_postfix_str(f"{60 * progress.n / elapsed:.1f} samples/min, "
                                         f"waiting for data {waited / elapsed:.0%}")
        finally:
            outcomes.close()
            progress.close()

    def doc(self, request: Instance) -> dict[str, Any]:
        """The lmms-eval doc of a request."""
        _, _, _, doc_id, task, split = request.args
        return self.task_dict[task][split][doc_id]

    def messages(self, request: Instance) -> list[dict[str, Any]]:
        """The lmms-eval chat messages of a request."""
        return request.args[1](self.doc(request))

    def answer_request(self, request: Instance, prepared: Prepared | None = None) -> SampleRecord:
        """``answer`` for one lmms-eval request."""
        _, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        return self.answer(task, doc_id, doc, partial(doc_to_messages, doc), gen_kwargs, prepared)

    def answer(self, task: str, doc_id: int, doc: dict[str, Any], messages: Callable[[], list[dict[str, Any]]],
               gen_kwargs: dict[str, Any], prepared: Prepared | None = None) -> SampleRecord:
        """The record of one sample: from the run folder when finished there, else computed and stored.

        Args:
            messages: gives the sample's lmms-eval chat messages (not called when the sample is resumed).
            prepared: its inputs as a worker prepared them; None: prepared here, now.
        """
        benchmark: Benchmark | None = BENCHMARKS.get(doc.get("benchmark", ""))
        task_name, sample_id = sample_ids(task, doc_id, doc)
        record: SampleRecord = {
            "task": task_name, "sample_id": sample_id, "config_key": self.config_key, "method": self.method.name,
            "prediction": None, "answer": benchmark.gold(doc) if benchmark else "", "correct": None, "error": None,
            "parsed": None, "category": benchmark.category(doc) if benchmark else {},
            **(benchmark.record_fields(doc) if benchmark else {}),
        }
        key = sample_key(record)
        self.served.append(key)
        stored = self.store.records.get(key)
        if stored is not None and stored["error"] is None:
            return stored
        if doc.get("path_problem"):  # a video outside the benchmark folder is never opened
            record["error"] = doc["path_problem"]
            self.store.append(record)
            return record
        try:
            ready = self.shared.inputs(key[:2], lambda: self._ready(prepared, messages))
        except (VideoError, WorkerDied) as error:
            record["error"] = str(error)
        else:
            stages, ready.stages = ready.stages, {}  # preparation is counted once, by the first point using it
            record["prompt"] = ready.prompt
            record.update(self._generate(ready.inputs, gen_kwargs, ready.file_frames))
            record["latency"] = {**record["latency"], **stages}
            if benchmark is not None:
                judgement = benchmark.judge(doc, record["prediction"])
                record["parsed"], record["correct"] = judgement.parsed, judgement.correct
        self.store.append(record)
        return record

    def _ready(self, prepared: Prepared | None, messages: Callable[[], list[dict[str, Any]]]) -> Ready:
        """The sample's inputs on the model's device, with the seconds their preparation took."""
        wait_s = 0.0
        if prepared is None:
            start_worker(self.loaded.processor, self.base_video, self.frame_cache, self.family)
            before = time.perf_counter()
            built = prepare(SampleJob(messages(), self.video, self.method.frames_for(self.base_video, self.dims)))
            wait_s = time.perf_counter() - before  # prepared here: the model waited for all of it
        else:
            built, wait_s = prepared.outcome.get(), prepared.wait_s
        assert built is not None
        timings = built.timings
        stages = {"decode_s": timings.decode_s, "cache_s": timings.cache_s, "processor_s": timings.processor_s,
                  "wait_s": wait_s}
        return Ready(built.inputs.to(self.device), built.prompt, {k: round(v, 6) for k, v in stages.items()},
                     built.file_frames)

    @torch.no_grad()
    def _generate(self, inputs: Any, gen_kwargs: dict[str, Any], file_frames: int | None = None) -> dict[str, Any]:
        """Greedy (or sampled) generation with lmms-eval's stock defaults; prediction, latency, tokens,
        FLOPs (actual and dense, per component) and per-layer statistics of the prefill."""
        settings = {"max_new_tokens": 128, "temperature": 0.0, "top_p": None, "num_beams": 1, **gen_kwargs}
        sample = settings["temperature"] > 0
        model = self.loaded.model
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        graph = self.decoder is not None and not sample and settings["num_beams"] == 1
        if self.decoder is not None and not graph:
            warnings.warn("decode=graph decodes greedily: samples asking for sampling or beams run through "
                          "transformers' generate", stacklevel=2)
        with GenerationTimer(model.model, self.devices) as timer:
            if graph:
                assert self.decoder is not None
                output = self.decoder.generate(inputs, settings["max_new_tokens"], eos, pad)
            else:
                output = model.generate(
                    **inputs, eos_token_id=eos, pad_token_id=pad,
                    do_sample=sample, temperature=settings["temperature"] if sample else None,
                    top_p=settings["top_p"] if sample else None, top_k=settings.get("top_k") if sample else None,
                    num_beams=settings["num_beams"], max_new_tokens=settings["max_new_tokens"], use_cache=True,
                )
        prompt_ids = inputs["input_ids"][0]
        generated = output[0, prompt_ids.shape[0]:]
        config = model.config
        visual = torch.isin(prompt_ids, torch.tensor([config.video_token_id, config.image_token_id],
                                                     device=prompt_ids.device))
        records = self.sparse.records
        grids = inputs.get("video_grid_thw")
        flops = self.method.count(self.dims, records, video_grid_thw=grids, image_grid_thw=inputs.get("image_grid_thw"),
                                  video=self.base_video, file_frames=file_frames)
        blocks = records[0].block_work()
        return {
            **({"blocks": blocks} if blocks is not None else {}),
            "frames_read": int(grids[:, 0].sum()) * self.dims.vision.temporal_patch if grids is not None else 0,
            "prediction": self.loaded.processor.batch_decode(generated[None], skip_special_tokens=True,
                                                             clean_up_tokenization_spaces=False)[0],
            "latency": timer.as_dict(),
            "tokens": {"visual": int(visual.sum()), "total": int(prompt_ids.shape[0]),
                       "generated": int(generated.shape[0])},
            "flops": flops.to_dict(),
            "layers": [{k: row[k] for k in ("layer", "kept_cube_fraction", "ffn_active_fraction", "entropy")}
                       for row in records[0].layer_summary(self.sparse.num_layers)],
        }


@dataclass(frozen=True)
class Prepared:
    """A worker's outcome for one request (the inputs, or the error that preparing them raised) and the
    seconds the model waited for it."""

    outcome: Outcome[PreparedInputs | None]
    wait_s: float


@dataclass
class Ready:
    """A sample's inputs on the model's device, its prompt, and the preparation seconds not yet recorded."""

    inputs: Any
    prompt: str
    stages: dict[str, float]
    file_frames: int | None = None


def sample_ids(task: str, doc_id: int, doc: dict[str, Any]) -> tuple[str, str]:
    """(task, sample id) of an lmms-eval doc as records name them: the benchmark's, else lmms-eval's."""
    benchmark: Benchmark | None = BENCHMARKS.get(doc.get("benchmark", ""))
    return (benchmark.name, benchmark.sample_id(doc)) if benchmark else (task, str(doc_id))


def check_decode(decode: str, method: Method, config: AdaSparkConfig, device_map: str | None = None) -> None:
    """``ConfigError`` naming the fix when the decode loop ``decode`` cannot run ``method`` at ``config``:
    ``graph`` replays dense decode steps of one GPU's model (``models.graph_decode``)."""
    if decode not in DECODE_MODES:
        raise ConfigError(f"decode={decode!r} is not a decode loop: pass {' or '.join(DECODE_MODES)}")
    if decode != "graph":
        return
    knobs = method.config(config)
    if not method.dense_decode:
        raise ConfigError(f"--decode graph replays dense decode steps, and method {method.name} changes them: "
                          "drop --decode graph")
    if knobs.attention and knobs.sparse_decode:
        raise ConfigError("--decode graph replays dense decode steps, and sparse_decode=true makes them sparse: "
                          "drop one of them")
    if device_map:
        raise ConfigError("--decode graph runs a model on one GPU: drop --device-map (or --decode graph)")


def check_kernels(config: AdaSparkConfig, device: str | torch.device | None) -> str | None:
    """``ConfigError`` naming the fix where ``config`` asks for kernels that cannot run on ``device`` (before the
    model loads): ``backend=triton`` off CUDA without ``TRITON_INTERPRET=1``, flash-attn-4 (``backend=fa4``,
    ``attn_impl=fa4``) not installed or without an sm90/sm100 GPU. Returns a one-line note where
    ``backend=fa4`` can never reach flash-attn-4 (``fa4.unexpressed``) or takes its slower 64-token-cube path,
    else None."""
    from adaspark_eval.sparse.kernels import fa4
    from adaspark_eval.sparse.kernels.dispatch import triton_problem

    reason = triton_problem(config.backend, device)
    for what, asked in (("backend=fa4", config.backend == "fa4"), ("attn_impl=fa4", config.attn_impl == "fa4")):
        reason = reason or (fa4.problem(device, what) if asked else None)
    if reason:
        raise ConfigError(reason)
    if config.backend != "fa4" or not config.attention:
        return None
    unused = fa4.unexpressed(config.select, config.cube)
    if unused:
        return (f"backend=fa4: {unused}; AdaS-Attn runs on the project's kernel instead (pass --select cube and "
                "e.g. --cube 4x4x8; docs/kernels.md)")
    if fa4.cube_tile(config.cube) < fa4.QUERY_BLOCK:
        return ("backend=fa4 with 64-token cubes computes the union of two cubes' kept blocks, which measured slower "
                "than the project's kernel (backend=auto); 128-token cubes (e.g. --cube 4x4x8) are flash-attn-4's "
                "fast path (docs/kernels.md)")
    return None


def auto_workers() -> int:
    """Decode workers per process when none are asked for: the machine's share of each rank."""
    return default_workers() // max(1, world_size())


def _text(value: Any) -> Any:
    """lmms-eval parses ``k=v`` values into bool/int/float; knobs and method settings are read from text."""
    return str(value) if isinstance(value, (bool, int, float)) else value
