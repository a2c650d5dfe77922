"""Load a Qwen-VL model and its processor (Qwen2.5-VL, Qwen2-VL, Qwen3-VL dense and MoE: ``sparse.families``):
the offline tiny models, the embedded VideoNIAH model shipped in the package, a local checkpoint directory,
or a hub name already in the local Hugging Face cache.
Nothing is downloaded. ``auto`` is the real 7B when the cache holds it, else the embedded model."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

from adaspark_eval.models import fused
from adaspark_eval.models.placement import dispatch, input_device, layer_device_map
from adaspark_eval.models.tiny import build_processor, build_tiny
from adaspark_eval.models.tiny_families import TINY_FAMILIES, build_tiny_family
from adaspark_eval.models.tiny_families import build_processor as build_family_processor
from adaspark_eval.sparse.families import DEFAULT_FAMILY, FAMILIES, MODEL_TYPES, Family, family_of

TINY = "tiny"
TINY_MODELS = (TINY, *TINY_FAMILIES)  # built in memory, random weights
EMBEDDED = "niah-small"
AUTO = "auto"
REAL_7B = "Qwen/Qwen2.5-VL-7B-Instruct"
EMBEDDED_DIR = Path(__file__).parent / "weights" / EMBEDDED
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


class ModelNotFound(FileNotFoundError):
    """The model is neither a local directory nor in the local Hugging Face cache."""


@dataclass
class LoadedModel:
    """A model, its processor, the name it was loaded by, and where its inputs go (``device``)."""

    model: Qwen2_5_VLForConditionalGeneration
    processor: Qwen2_5_VLProcessor
    name: str
    device: torch.device


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """``"bf16"`` -> ``torch.bfloat16`` and so on; a clear error for anything else."""
    if isinstance(name, torch.dtype):
        return name
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {name!r}: pass one of {', '.join(sorted(_DTYPES))}")
    return _DTYPES[name]


SUPPORTED_MODEL_TYPES = MODEL_TYPES
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def resolve_checkpoint(name: str) -> Path:
    """The directory holding ``name``: the embedded model, itself if it is a directory, else its snapshot
    in the HF cache."""
    if name == EMBEDDED:
        return EMBEDDED_DIR
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFound(f"{path} has no config.json: point --model at a Qwen-VL checkpoint directory")
        return path
    if _looks_like_path(name):
        raise ModelNotFound(f"--model {name}: no such directory: pass an existing checkpoint directory, or tiny, "
                            f"{EMBEDDED}, {AUTO}")
    cache = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    snapshots = cache.expanduser() / f"models--{name.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    if not found:
        raise ModelNotFound(
            f"model {name!r} not found: looked for a directory {path} and for {snapshots}; download it on a "
            f"machine with network access (huggingface-cli download {name}) or pass --model tiny"
        )
    return found[-1].parent


def _looks_like_path(name: str) -> bool:
    """A local path rather than a hub name (``owner/model``)."""
    return name.startswith(("/", ".", "~")) or name.count("/") != 1 or Path(name).expanduser().parent.is_dir() and (
        Path(name).expanduser().parent != Path("."))


def check_checkpoint(name: str) -> str:
    """``name`` resolved (``auto``), with a checkpoint directory checked before anything loads: a readable
    ``config.json`` of a supported architecture and weight files beside it. Raises ``ModelNotFound`` naming
    the file and the fix."""
    name = resolve_name(name)
    if name in TINY_MODELS:
        return name
    path = resolve_checkpoint(name)
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise ModelNotFound(f"{path / 'config.json'} cannot be read ({str(error).splitlines()[0][:80]}): the "
                            "checkpoint is damaged; copy it again") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelNotFound(f"{path} holds a {model_type or 'model of unknown type'} checkpoint: adaspark-eval runs "
                            f"Qwen2.5-VL, Qwen2-VL and Qwen3-VL (model_type {', '.join(SUPPORTED_MODEL_TYPES)}); pass "
                            "such a checkpoint")
    if not any(any(path.glob(pattern)) for pattern in WEIGHT_FILES):
        raise ModelNotFound(f"{path} has no weights ({', '.join(WEIGHT_FILES[:2])}): copy the checkpoint's weight "
                            "files there")
    return name


def model_family(name: str) -> Family:
    """The family of model ``name`` (checked by ``check_checkpoint``): known for the tiny models, else read from
    its ``config.json`` (cheap: no weights)."""
    if name == TINY:
        return DEFAULT_FAMILY
    if name in TINY_FAMILIES:
        return FAMILIES[TINY_FAMILIES[name]]
    return family_of(json.loads((resolve_checkpoint(name) / "config.json").read_text()))


def check_family_options(name: str, fused_ops: bool = False, batched_vision: bool = False,
                         decode: str = "generate") -> None:
    """Refuse options that swap Qwen2.5-VL's own modules (``models.fused``, ``models.vision``) for a model of
    another family, where they would silently change nothing, and ``--decode graph`` for a family it cannot
    run (one line naming the fix)."""
    family = model_family(resolve_name(name))
    if decode == "graph" and not family.graph_decode:
        raise ValueError(f"--decode graph runs Qwen2.5-VL and Qwen2-VL; {name} is a {family.name} model: "
                         "pass --decode generate")
    if family is DEFAULT_FAMILY:
        return
    for flag, given in (("--fused-ops", fused_ops), ("--batched-vision", batched_vision)):
        if given:
            raise ValueError(f"{flag} swaps Qwen2.5-VL's modules; {name} is a {family.name} model: drop {flag}")


def check_device(device: str | None) -> None:
    """Refuse a device this machine does not have (one line naming the fix)."""
    if device is None:
        return
    try:
        where = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device} is not a device: pass cpu, cuda or cuda:N") from None
    if where.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this machine has no CUDA device: pass --device cpu")
    if where.type == "cuda" and where.index is not None and where.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA devices: pass one "
                         "of them")
    if where.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device}: adaspark-eval runs on cpu or cuda: pass one of them")


def resolve_name(name: str) -> str:
    """``auto`` -> the real 7B if the local HF cache holds it, else the embedded model; others unchanged."""
    if name != AUTO:
        return name
    try:
        resolve_checkpoint(REAL_7B)
    except ModelNotFound:
        return EMBEDDED
    return REAL_7B


def load_processor(name: str) -> Qwen2_5_VLProcessor:
    """The processor of model ``name`` alone (cheap: what decode-ahead workers build), with qwen-vl-utils'
    per-frame pixel cap, as ``load_model`` returns it."""
    name = resolve_name(name)
    if name == TINY:
        processor = build_processor()
    elif name in TINY_FAMILIES:
        processor = build_family_processor(TINY_FAMILIES[name])
    else:
        processor = AutoProcessor.from_pretrained(resolve_checkpoint(name))
    processor.video_processor.cap_pixels_per_frame = True  # qwen-vl-utils' per-frame pixel cap
    return processor


def load_model(name: str = TINY, *, device: str = "cpu", dtype: str | torch.dtype = "float32",
               max_pixels: int | None = None, devices: list[str] | None = None, fused_ops: bool = False) -> LoadedModel:
    """Load ``name`` (``"tiny"``, ``"niah-small"``, ``"auto"``, a checkpoint directory, or a cached hub
    name) on ``device``, or split over ``devices`` (``placement.layer_device_map``) when given;
    ``LoadedModel.name`` is the model actually loaded. ``fused_ops``: RMSNorm, rotary embedding and
    SiLU-and-multiply as fused kernels (``models.fused``; CUDA only).

    The model uses sdpa attention (the dense baseline AdaSpark falls back to).
    """
    name = check_checkpoint(name)
    torch_dtype = parse_dtype(dtype)
    check_family_options(name, fused_ops)
    if fused_ops and not devices and not fused.runs_on(torch.device(device)):
        raise fused.FusedOpsError(f"--fused-ops runs Triton kernels, which need a GPU (device {device}): pass "
                                  "--device cuda or drop --fused-ops")
    if name in TINY_MODELS:
        model, _ = build_tiny(dtype=torch_dtype) if name == TINY else build_tiny_family(name, dtype=torch_dtype)
        device_map = layer_device_map(model.config, devices) if devices else None
        model = dispatch(model, device_map) if device_map else model.to(device)
    else:
        path = resolve_checkpoint(name)
        config = AutoConfig.from_pretrained(path)
        device_map = layer_device_map(config, devices) if devices else None
        model_class = getattr(transformers, family_of(config).model_class)
        model = model_class.from_pretrained(path, dtype=torch_dtype, attn_implementation="sdpa", device_map=device_map)
        model = model if device_map else model.to(device)
    processor = load_processor(name)
    if max_pixels is not None:
        size = processor.video_processor.size
        processor.video_processor.size = {"shortest_edge": size["shortest_edge"], "longest_edge": max_pixels}
    if fused_ops:
        fused.fuse(model)
    where = input_device(device_map) if device_map else torch.device(device)
    return LoadedModel(model=model.eval(), processor=processor, name=name, device=where)
