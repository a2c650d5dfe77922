"""The shape of a Qwen-VL model (every family of ``sparse.families``) that its FLOPs depend on, read from a
transformers config or a known name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import transformers
from transformers import PreTrainedConfig

from adaspark_eval.flops.known_models import KNOWN_MODELS
from adaspark_eval.sparse.families import QWEN2_VL, family_of


@dataclass(frozen=True)
class TextDims:
    """The language model: ``hidden`` wide, ``layers`` decoder layers of ``heads`` query and ``kv_heads``
    key/value heads of ``head_dim``, a gated MLP of ``intermediate``, and a ``vocab``-row LM head.

    An MoE model has routed-expert blocks instead of the MLP in ``moe_layers``: a router (``hidden`` x
    ``experts``) and ``experts_per_token`` gated experts of ``moe_intermediate`` run per token."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    moe_layers: tuple[int, ...] = ()
    experts: int = 0
    experts_per_token: int = 0
    moe_intermediate: int = 0


@dataclass(frozen=True)
class VisionDims:
    """The vision encoder. ``patch`` x ``patch`` pixels x ``temporal_patch`` frames per patch; ``merge`` x
    ``merge`` patches per LLM token; windows of ``window`` pixels a side; ``full_blocks`` of the ``depth``
    blocks attend over a whole frame group instead of a window (every block, for a ViT without windows:
    ``window`` 0). The MLP has ``mlp_projections`` projections (3 gated, 2 plain); ``mergers`` patch mergers
    run (the final one, and one per DeepStack level)."""

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
    mlp_projections: int = 3
    mergers: int = 1


@dataclass(frozen=True)
class ModelDims:
    text: TextDims
    vision: VisionDims

    @classmethod
    def from_config(cls, config: PreTrainedConfig) -> ModelDims:
        """From a model's ``config`` (``model.config``) of any supported family."""
        family = family_of(config)
        t, v = config.text_config, config.vision_config
        experts = getattr(t, "num_experts", 0) if family.moe else 0
        moe_layers = tuple(i for i in range(t.num_hidden_layers) if experts and i not in (t.mlp_only_layers or [])
                           and (i + 1) % t.decoder_sparse_step == 0)
        text = TextDims(hidden=t.hidden_size, layers=t.num_hidden_layers, heads=t.num_attention_heads,
                        kv_heads=t.num_key_value_heads,
                        head_dim=getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads,
                        intermediate=t.intermediate_size, vocab=t.vocab_size, moe_layers=moe_layers,
                        experts=experts, experts_per_token=t.num_experts_per_tok if experts else 0,
                        moe_intermediate=t.moe_intermediate_size if experts else 0)
        common = {"depth": v.depth, "heads": v.num_heads, "in_channels": v.in_channels, "patch": v.patch_size,
                  "temporal_patch": v.temporal_patch_size, "merge": v.spatial_merge_size}
        if family.window_attention:  # Qwen2.5-VL
            vision = VisionDims(hidden=v.hidden_size, intermediate=v.intermediate_size, out_hidden=v.out_hidden_size,
                                window=v.window_size, **common,
                                full_blocks=sum(1 for i in set(v.fullatt_block_indexes) if 0 <= i < v.depth))
        elif family.name == QWEN2_VL:  # embed_dim is the ViT's width, hidden_size the LLM's
            vision = VisionDims(hidden=v.embed_dim, intermediate=int(v.embed_dim * v.mlp_ratio),
                                out_hidden=v.hidden_size, window=0, full_blocks=v.depth, mlp_projections=2, **common)
        else:  # Qwen3-VL: plain MLP, full attention per frame group, one merger per DeepStack level
            vision = VisionDims(hidden=v.hidden_size, intermediate=v.intermediate_size, out_hidden=v.out_hidden_size,
                                window=0, full_blocks=v.depth, mlp_projections=2,
                                mergers=1 + (len(v.deepstack_visual_indexes) if family.deepstack else 0), **common)
        return cls(text=text, vision=vision)


def known_name(name: str) -> str | None:
    """The ``KNOWN_MODELS`` key of ``name`` (``qwen2.5-vl-7b``, ``Qwen/Qwen2.5-VL-7B-Instruct``,
    ``qwen3-vl-30b-a3b``, ...), or None."""
    key = name.lower().removeprefix("qwen/").removesuffix("-instruct")
    return key if key in KNOWN_MODELS else None


def known_config(name: str) -> PreTrainedConfig:
    """The transformers config of a known model name (no weights, nothing downloaded), of its family's class."""
    key = known_name(name)
    if key is None:
        raise ValueError(f"unknown model config {name!r}: pass one of {', '.join(KNOWN_MODELS)}")
    fields: dict[str, Any] = dict(KNOWN_MODELS[key])
    family = family_of(fields)
    config_class = getattr(transformers, family.model_class.replace("ForConditionalGeneration", "Config"))
    return config_class(**{k: v for k, v in fields.items() if k != "model_type"})
