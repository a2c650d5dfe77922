"""One model over several GPUs of one process, for models that fit no single GPU (a 72B in bf16 is
~146 GB): a ``device_map`` that deals the decoder layers out in contiguous, near-equal runs, the vision
encoder and embeddings with the first run and the final norm and LM head with the last. Activations move
from device to device between layers (accelerate's hooks); one GPU works at a time.

    devices = parse_devices("auto")                      # every visible GPU
    device_map = layer_device_map(config, devices)       # {"model.visual": "cuda:0", ...}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import PretrainedConfig

PREFIX = "model.language_model"


class PlacementError(ValueError):
    """A device map that cannot be built on this machine."""


def parse_devices(text: str) -> list[str]:
    """``auto`` -> every visible CUDA device; ``cuda:0,cuda:1`` (or ``0,1``) -> those, in that order.

    Raises:
        PlacementError: no GPU for ``auto``, an unknown or repeated device.
    """
    text = text.strip()
    if text == "auto":
        count = torch.cuda.device_count()
        if count == 0:
            raise PlacementError("--device-map auto found no GPU: pass --device cpu, or run on a machine with GPUs")
        return [f"cuda:{i}" for i in range(count)]
    devices = [_device_name(part.strip()) for part in text.split(",") if part.strip()]
    if not devices:
        raise PlacementError(f"--device-map {text!r} names no device: pass auto or a list such as cuda:0,cuda:1")
    if len(set(devices)) != len(devices):
        raise PlacementError(f"--device-map {text!r} repeats a device: name each GPU once, e.g. cuda:0,cuda:1")
    return devices


def layer_device_map(config: PretrainedConfig, devices: Sequence[str]) -> dict[str, str]:
    """Module name -> device for a Qwen2.5-VL of ``config`` over ``devices``: decoder layers in contiguous
    runs whose sizes differ by at most one (earlier devices take the extra layers); vision encoder,
    embeddings and rotary embedding on the first device; final norm and LM head on the last (on the first
    when the LM head shares the embedding's weight)."""
    if not devices:
        raise PlacementError("a device map needs at least one device")
    layers = config.text_config.num_hidden_layers
    if len(devices) > layers:
        raise PlacementError(f"{len(devices)} devices for {layers} decoder layers: name at most {layers} devices")
    first, last = devices[0], devices[-1]
    device_map = {"model.visual": first, f"{PREFIX}.embed_tokens": first, f"{PREFIX}.rotary_emb": first}
    share, extra = divmod(layers, len(devices))
    layer = 0
    for rank, device in enumerate(devices):
        for _ in range(share + (rank < extra)):
            device_map[f"{PREFIX}.layers.{layer}"] = device
            layer += 1
    device_map[f"{PREFIX}.norm"] = last
    device_map["lm_head"] = first if getattr(config, "tie_word_embeddings", False) else last
    return device_map


def dispatch(model: nn.Module, device_map: dict[str, str]) -> nn.Module:
    """Move an in-memory ``model`` onto ``device_map`` (what ``from_pretrained(device_map=...)`` does
    for a checkpoint), with hooks that carry activations across devices."""
    from accelerate import dispatch_model

    return dispatch_model(model, device_map=device_map)


def input_device(device_map: dict[str, str]) -> torch.device:
    """Where a mapped model takes its inputs: the embeddings' device."""
    return torch.device(device_map[f"{PREFIX}.embed_tokens"])


def _device_name(part: str) -> str:
    name = f"cuda:{part}" if part.isdigit() else part
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PlacementError(f"unknown device {part!r} in --device-map: pass auto or a list such as cuda:0,cuda:1") \
            from None
    if device.type == "cuda" and device.index is None:
        raise PlacementError(f"--device-map needs numbered GPUs ({part!r}): pass cuda:0,cuda:1")
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise PlacementError(f"{name} is not visible ({torch.cuda.device_count()} GPU(s)): name GPUs that exist")
    return str(device)
