"""The model families AdaSpark runs on, each behind one small ``Family`` object: where its decoder layers and
MLPs are, what its video prompt looks like, and how lmms-eval's stock class reads it. The runtime, the FLOP
counters and the lmms model ask the family instead of naming a model class, so they stay family-agnostic.

    family = family_of(model.config)     # by config.model_type
    family.decoder_layers(model)         # the language model's decoder layers
    family.is_moe_block(layer.mlp)       # a routed-expert block (Qwen3-VL-MoE) rather than a dense MLP

How the token layout maps onto each family is in docs/method.md ("Model families").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

QWEN2_5_VL = "qwen2.5-vl"
QWEN2_VL = "qwen2-vl"
QWEN3_VL = "qwen3-vl"
QWEN3_VL_MOE = "qwen3-vl-moe"


@dataclass(frozen=True)
class Family:
    """What differs between the supported model families.

    Attributes:
        name: ``qwen2.5-vl``, ``qwen2-vl``, ``qwen3-vl`` or ``qwen3-vl-moe``.
        model_type: the ``model_type`` of its ``config.json``.
        model_class: the transformers class of the whole model (looked up by name when loading).
        lmms_class: lmms-eval's stock model class (``--model`` of ``lmms_eval``) that ``--p 1`` reproduces.
        image_patch: the ViT patch in pixels (qwen_vl_utils' ``image_patch_size``: frames are resized to
            multiples of twice it).
        timestamps: the processor writes ``<t seconds>`` text before each temporal group of a video (Qwen3-VL):
            a video's visual tokens are then not consecutive positions.
        deepstack: vision features of several ViT blocks are added into the first decoder layers' hidden states
            at the visual positions (Qwen3-VL).
        moe: the decoder MLPs are (mostly) routed-expert blocks.
        system_prompt: the system turn lmms-eval's stock class inserts itself (None: the chat template's own).
        gated_vision_mlp: the ViT MLP is gated (three projections, Qwen2.5-VL) rather than two.
        window_attention: the ViT attends within windows except in its full-attention blocks (Qwen2.5-VL).
        processor_resizes: lmms-eval's stock class lets the processor resize the frames qwen_vl_utils already
            resized (Qwen2.5-VL, Qwen2-VL); False: it passes ``do_resize=False`` and the video kwargs (Qwen3-VL,
            whose video processor would cap the pixels of all frames together).
        graph_decode: ``--decode graph`` (``models.graph_decode``) runs it: its text model takes the 3-D
            rotary step and transformers' static cache as Qwen2.5-VL's does (not Qwen3-VL's).
    """

    name: str
    model_type: str
    model_class: str
    lmms_class: str
    image_patch: int
    timestamps: bool = False
    deepstack: bool = False
    moe: bool = False
    system_prompt: str | None = None
    gated_vision_mlp: bool = False
    window_attention: bool = False
    processor_resizes: bool = True
    graph_decode: bool = True

    def decoder_layers(self, model: nn.Module) -> nn.ModuleList:
        """The decoder layers of ``model`` (a ``*ForConditionalGeneration``), each with ``self_attn`` (its
        ``layer_idx``), ``post_attention_layernorm`` and ``mlp``."""
        return model.model.language_model.layers

    def is_moe_block(self, mlp: nn.Module) -> bool:
        """Whether ``mlp`` is a routed-expert block (router ``gate`` + ``experts``), which takes (B, S, D) only."""
        return self.moe and hasattr(mlp, "experts") and hasattr(mlp, "gate")


FAMILIES = {
    family.name: family
    for family in (
        Family(QWEN2_5_VL, "qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", "qwen2_5_vl", image_patch=14,
               gated_vision_mlp=True, window_attention=True),
        Family(QWEN2_VL, "qwen2_vl", "Qwen2VLForConditionalGeneration", "qwen2_vl", image_patch=14),
        Family(QWEN3_VL, "qwen3_vl", "Qwen3VLForConditionalGeneration", "qwen3_vl", image_patch=16, timestamps=True,
               deepstack=True, system_prompt="You are a helpful assistant.", processor_resizes=False,
               graph_decode=False),
        Family(QWEN3_VL_MOE, "qwen3_vl_moe", "Qwen3VLMoeForConditionalGeneration", "qwen3_vl", image_patch=16,
               timestamps=True, deepstack=True, moe=True, system_prompt="You are a helpful assistant.",
               processor_resizes=False, graph_decode=False),
    )
}
DEFAULT_FAMILY = FAMILIES[QWEN2_5_VL]
MODEL_TYPES = tuple(family.model_type for family in FAMILIES.values())


def family_of(config: Any) -> Family:
    """The family of a transformers config (``model.config``) or a ``config.json`` dict, by its ``model_type``."""
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    for family in FAMILIES.values():
        if family.model_type == model_type:
            return family
    raise ValueError(f"model_type {model_type!r} is not a supported family: adaspark-eval runs "
                     f"{', '.join(MODEL_TYPES)} checkpoints")
