"""lmms-eval model ``adaspark``: Qwen2.5-VL with AdaSpark attached, one sample at a time, every sample
recorded in a run folder (``results.store.RunStore``) as it finishes.

Model args (``--model_args k=v,...``): ``pretrained`` (``tiny``, a checkpoint directory or a cached hub
name), ``device``, ``device_map`` (``auto`` or ``cuda:0;cuda:1``: the model split over those GPUs in this one
process, ``models.placement``), ``dtype``, ``fused_ops`` (``true``: RMSNorm, rotary embedding and SiLU-and-multiply
in fused kernels, ``models.fused``; GPU only), ``max_num_frames``, ``fps``, ``min_pixels``, ``max_pixels`` (video reading
as lmms-eval's stock ``qwen2_5_vl``, see ``inputs``), ``output`` (run folder; default
``results/<config_key>``), every AdaSpark knob (``p=0.8``, ``cube=4x4x4``, ``dense_layers=0;1``, ...), and
``method`` (``adaspark``, or a peer: ``adaspark_eval.methods``) with its settings (``window=1``, ...).

A sample already in the run folder under the same key (task, sample id, config key) is answered from
there without computing; a stored error is tried again. A missing or undecodable video makes that
sample's record an error with the reason, its prediction the empty string (scored wrong), and the run
goes on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from adaspark_eval.config import AdaSparkConfig, parse_bool, short_hash
from adaspark_eval.data.video import VideoError, VideoSettings
from adaspark_eval.datasets import BENCHMARKS, Benchmark
from adaspark_eval.flops.dims import ModelDims
from adaspark_eval.lmms.inputs import build_inputs
from adaspark_eval.lmms.timing import GenerationTimer
from adaspark_eval.methods import Method, attach, make_method, split_settings
from adaspark_eval.models.loading import AUTO, load_model
from adaspark_eval.models.memo import SampleMemo
from adaspark_eval.models.parallel import join, world_size
from adaspark_eval.models.placement import parse_devices
from adaspark_eval.results.schema import SampleRecord
from adaspark_eval.results.store import RunStore, SampleKey, sample_key

METHOD = "adaspark"
KNOBS = tuple(f.name for f in dataclasses.fields(AdaSparkConfig))
MODEL_ARGS = ("pretrained", "device", "device_map", "dtype", "fused_ops", "max_num_frames", "fps", "min_pixels",
              "max_pixels", "output", "method")


def run_key(config: AdaSparkConfig, model: str, video: VideoSettings, dtype: str, method: Method | None = None,
            fused_ops: bool = False) -> str:
    """``adaspark-<hash>``: the config key of results; changes with any knob, the model, the video
    reading, the dtype or fused ops, so results of another setup are never reused."""
    payload: dict[str, Any] = {"knobs": config.key(), "model": model, "video": dataclasses.asdict(video),
                               "dtype": dtype}
    if fused_ops:  # keys of runs without them stay as they were
        payload["fused_ops"] = True
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
    ) -> None:
        super().__init__()
        self.method = method or make_method(METHOD)
        self.base_video = video or VideoSettings()  # as given; ``video``: as the method reads videos
        self.dtype = str(dtype)
        self.fused_ops = bool(fused_ops)
        devices = self._place(device, device_map)
        self.loaded = load_model(str(pretrained), device=str(self._device), dtype=self.dtype, devices=devices,
                                 fused_ops=self.fused_ops)
        self._device = self.loaded.device  # where inputs go: the first GPU of a device map
        self.devices = {parameter.device for parameter in self.loaded.model.parameters()}
        self.model_name = self.loaded.name  # "auto" resolved: results are keyed by the model really used
        for sizes in (self.loaded.processor.image_processor, self.loaded.processor.video_processor):
            sizes.size = {"shortest_edge": self.base_video.min_pixels, "longest_edge": self.base_video.max_pixels}
        self.dims = ModelDims.from_config(self.loaded.model.config)
        self.sparse = attach(self.loaded.model, self.method, config or AdaSparkConfig())  # the one attach
        self._derive()
        self.store = self.open_store(output if output is not None else Path("results") / self.config_key)
        self.shared = SampleMemo()  # one sample's memo; a sweep keeps it across its points
        self.served: list[SampleKey] = []

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
        video = VideoSettings(int(rest.get("max_num_frames", VideoSettings.max_num_frames)),
                              None if fps is None else float(fps),
                              int(rest.get("min_pixels", VideoSettings.min_pixels)),
                              int(rest.get("max_pixels", VideoSettings.max_pixels)))
        return cls(pretrained=str(rest.get("pretrained", AUTO)),
                   config=AdaSparkConfig.from_dict({k: _text(v) for k, v in knobs.items()}),
                   method=make_method(str(rest.get("method", METHOD)), {k: _text(v) for k, v in settings.items()}),
                   video=video, device=rest.get("device"), device_map=rest.get("device_map"),
                   dtype=str(rest.get("dtype", "bfloat16")), fused_ops=parse_bool(rest.get("fused_ops", False)),
                   output=rest.get("output"))

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
                                  self.fused_ops)

    def open_store(self, folder: str | Path) -> RunStore:
        """The run folder ``folder`` as this process writes it (its rank's samples file)."""
        return RunStore(folder, rank=self.rank)

    @property
    def config(self) -> AdaSparkConfig:
        return self.sparse.config

    def configure(self, config: AdaSparkConfig, method: Method | None = None) -> None:
        """Switch the AdaSpark knobs and, when given, the method (no reload); later samples are keyed by them."""
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
        """Answer each request (``args = (context, doc_to_messages, gen_kwargs, doc_id, task, split)``)."""
        answers = []
        for request in tqdm(requests, desc="adaspark", disable=self.rank != 0):
            self.shared.next_sample()
            answers.append(self.answer_request(request)["prediction"] or "")
        return answers

    def answer_request(self, request: Instance) -> SampleRecord:
        """``answer`` for one lmms-eval request."""
        _, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        return self.answer(task, doc_id, doc, partial(doc_to_messages, doc), gen_kwargs)

    def answer(self, task: str, doc_id: int, doc: dict[str, Any], messages: Callable[[], list[dict[str, Any]]],
               gen_kwargs: dict[str, Any]) -> SampleRecord:
        """The record of one sample: from the run folder when finished there, else computed and stored.

        Args:
            messages: gives the sample's lmms-eval chat messages (not called when the sample is resumed).
        """
        benchmark: Benchmark | None = BENCHMARKS.get(doc.get("benchmark", ""))
        record: SampleRecord = {
            "task": benchmark.name if benchmark else task,
            "sample_id": benchmark.sample_id(doc) if benchmark else str(doc_id),
            "config_key": self.config_key, "method": self.method.name,
            "prediction": None, "answer": benchmark.gold(doc) if benchmark else "", "correct": None, "error": None,
            "parsed": None, "category": benchmark.category(doc) if benchmark else {},
            **(benchmark.record_fields(doc) if benchmark else {}),
        }
        key = sample_key(record)
        self.served.append(key)
        stored = self.store.records.get(key)
        if stored is not None and stored["error"] is None:
            return stored
        try:
            inputs, record["prompt"] = self.shared.inputs(
                key[:2], lambda: _on_device(build_inputs(self.loaded.processor, messages(), self.video), self.device))
        except VideoError as error:
            record["error"] = str(error)
        else:
            record.update(self._generate(inputs, gen_kwargs))
            if benchmark is not None:
                judgement = benchmark.judge(doc, record["prediction"])
                record["parsed"], record["correct"] = judgement.parsed, judgement.correct
        self.store.append(record)
        return record

    @torch.no_grad()
    def _generate(self, inputs: Any, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Greedy (or sampled) generation with lmms-eval's stock defaults; prediction, latency, tokens,
        FLOPs (actual and dense, per component) and per-layer statistics of the prefill."""
        settings = {"max_new_tokens": 128, "temperature": 0.0, "top_p": None, "num_beams": 1, **gen_kwargs}
        sample = settings["temperature"] > 0
        model = self.loaded.model
        with GenerationTimer(model.model, self.devices) as timer:
            output = model.generate(
                **inputs, eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
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
        flops = self.method.count(self.dims, records, video_grid_thw=inputs.get("video_grid_thw"),
                                  image_grid_thw=inputs.get("image_grid_thw"), video=self.base_video)
        return {
            "prediction": self.loaded.processor.batch_decode(generated[None], skip_special_tokens=True,
                                                             clean_up_tokenization_spaces=False)[0],
            "latency": timer.as_dict(),
            "tokens": {"visual": int(visual.sum()), "total": int(prompt_ids.shape[0]),
                       "generated": int(generated.shape[0])},
            "flops": flops.to_dict(),
            "layers": [{k: row[k] for k in ("layer", "kept_cube_fraction", "ffn_active_fraction", "entropy")}
                       for row in records[0].layer_summary(self.sparse.num_layers)],
        }


def _on_device(built: tuple[Any, str], device: torch.device) -> tuple[Any, str]:
    inputs, prompt = built
    return inputs.to(device), prompt


def _text(value: Any) -> Any:
    """lmms-eval parses ``k=v`` values into bool/int/float; knobs and method settings are read from text."""
    return str(value) if isinstance(value, (bool, int, float)) else value
