"""The shape of a Qwen2.5-VL that its FLOPs depend on, read from a transformers config or a known name."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import Qwen2_5_VLConfig

from adaspark_eval.flops.known_models import KNOWN_MODELS


@dataclass(frozen=True)
class TextDims:
    """The language model: ``hidden`` wide, ``layers`` decoder layers of ``heads`` query and ``kv_heads``
    key/value heads of ``head_dim``, a gated MLP of ``intermediate``, and a ``vocab``-row LM head."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int


@dataclass(frozen=True)
class VisionDims:
    """The vision encoder. ``patch`` x ``patch`` pixels x ``temporal_patch`` frames per patch; ``merge`` x
    ``merge`` patches per LLM token; windows of ``window`` pixels a side; ``full_blocks`` of the ``depth``
    blocks attend over a whole frame group instead of a window."""

    hidden: int
    depth: int
    heads: int
    intermediate: int
    out_hidden: int
    in_channels: int
    patch: int
    temporal_patch: int
    merge: int
    window: int
    full_blocks: int


@dataclass(frozen=True)
class ModelDims:
    text: TextDims
    vision: VisionDims

    @classmethod
    def from_config(cls, config: Qwen2_5_VLConfig) -> ModelDims:
        """From a model's ``config`` (``model.config``)."""
        t, v = config.text_config, config.vision_config
        text = TextDims(hidden=t.hidden_size, layers=t.num_hidden_layers, heads=t.num_attention_heads,
                        kv_heads=t.num_key_value_heads, head_dim=t.hidden_size // t.num_attention_heads,
                        intermediate=t.intermediate_size, vocab=t.vocab_size)
        vision = VisionDims(hidden=v.hidden_size, depth=v.depth, heads=v.num_heads, intermediate=v.intermediate_size,
                            out_hidden=v.out_hidden_size, in_channels=v.in_channels, patch=v.patch_size,
                            temporal_patch=v.temporal_patch_size, merge=v.spatial_merge_size, window=v.window_size,
                            full_blocks=sum(1 for i in set(v.fullatt_block_indexes) if 0 <= i < v.depth))
        return cls(text=text, vision=vision)


def known_name(name: str) -> str | None:
    """The ``KNOWN_MODELS`` key of ``name`` (``qwen2.5-vl-7b``, ``Qwen/Qwen2.5-VL-7B-Instruct``, ...), or None."""
    key = name.lower().removeprefix("qwen/").removesuffix("-instruct")
    return key if key in KNOWN_MODELS else None


def known_config(name: str) -> Qwen2_5_VLConfig:
    """The transformers config of a known model name (no weights, nothing downloaded)."""
    key = known_name(name)
    if key is None:
        raise ValueError(f"unknown model config {name!r}: pass one of {', '.join(KNOWN_MODELS)}")
    return Qwen2_5_VLConfig(**KNOWN_MODELS[key])
