"""Tiny random-weight models of the other families (``tiny-qwen2-vl``, ``tiny-qwen3-vl``, ``tiny-qwen3-vl-moe``),
built in memory like ``tiny`` (``models.tiny``): the real transformers classes with small configs, the same
tiny tokenizer, and each family's real processor with its real patch, merge and temporal sizes (Qwen3-VL:
patch 16 and ``<t seconds>`` timestamps before each temporal group).

Each has 4 decoder layers of 4 query / 2 KV heads (head dim 16) and a 2-block ViT; the MoE model routes
each token to 2 of 4 experts in layers 0-2 and keeps a dense MLP in layer 3; Qwen3-VL's DeepStack adds the
features of ViT blocks 0 and 1 into decoder layers 0 and 1.
"""

from __future__ import annotations

import torch
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLMoeConfig,
    Qwen3VLMoeForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

from adaspark_eval.models import tiny
from adaspark_eval.models.tiny import CHAT_TEMPLATE, build_tokenizer
from adaspark_eval.sparse.families import QWEN2_5_VL, QWEN2_VL, QWEN3_VL, QWEN3_VL_MOE

TINY_FAMILIES = {"tiny-qwen2-vl": QWEN2_VL, "tiny-qwen3-vl": QWEN3_VL, "tiny-qwen3-vl-moe": QWEN3_VL_MOE}

# Qwen3-VL-Instruct's chat template, without tools and reasoning: no default system turn (lmms-eval's stock
# class inserts one), media as in Qwen2.5-VL's.
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6}


def build_processor(family: str, tokenizer: PreTrainedTokenizerFast | None = None, max_pixels: int = 448 * 448,
                    min_pixels: int = 28 * 28) -> Qwen2VLProcessor | Qwen3VLProcessor:
    """The real processor of ``family`` around the tiny tokenizer."""
    tokenizer = tokenizer or build_tokenizer()
    sizes = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    if family == QWEN2_VL:
        return Qwen2VLProcessor(
            image_processor=Qwen2VLImageProcessor(size=sizes, patch_size=14, temporal_patch_size=2, merge_size=2),
            video_processor=Qwen2VLVideoProcessor(size=sizes, patch_size=14, temporal_patch_size=2, merge_size=2,
                                                  cap_pixels_per_frame=True),
            tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    return Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=sizes, patch_size=16, temporal_patch_size=2, merge_size=2),
        video_processor=Qwen3VLVideoProcessor(size=sizes, patch_size=16, temporal_patch_size=2, merge_size=2,
                                              cap_pixels_per_frame=True),
        tokenizer=tokenizer, chat_template=QWEN3_CHAT_TEMPLATE)


def family_processor(family: str, max_pixels: int = 448 * 448) -> object:
    """The tiny processor of any family (``models.tiny``'s for Qwen2.5-VL): the family's real token arithmetic,
    what a dense count of a known config needs."""
    return tiny.build_processor(max_pixels=max_pixels) if family == QWEN2_5_VL else build_processor(
        family, max_pixels=max_pixels)


def tiny_config(family: str, tokenizer: PreTrainedTokenizerFast) -> Qwen2VLConfig | Qwen3VLConfig | Qwen3VLMoeConfig:
    """The small config of ``family`` around ``tokenizer``."""
    ids = tokenizer.convert_tokens_to_ids
    special = {"bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"),
               "pad_token_id": ids("<|endoftext|>"), "vocab_size": len(tokenizer)}
    top = {"image_token_id": ids("<|image_pad|>"), "video_token_id": ids("<|video_pad|>"),
           "vision_start_token_id": ids("<|vision_start|>"), "vision_end_token_id": ids("<|vision_end|>"),
           "tie_word_embeddings": False}
    if family == QWEN2_VL:
        text = {**_TEXT, **special, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                                        "mrope_section": [2, 3, 3]}}
        vision = {"depth": 2, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2, "hidden_size": 64, "patch_size": 14,
                  "spatial_merge_size": 2, "temporal_patch_size": 2}
        return Qwen2VLConfig(text_config=text, vision_config=vision, **top)
    text = {**_TEXT, **special, "head_dim": 16,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [4, 2, 2],
                                "mrope_interleaved": True}}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 64,
              "deepstack_visual_indexes": [0, 1]}
    if family == QWEN3_VL:
        return Qwen3VLConfig(text_config=text, vision_config=vision, **top)
    text = {**text, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "decoder_sparse_step": 1,
            "mlp_only_layers": [3]}
    return Qwen3VLMoeConfig(text_config=text, vision_config=vision, **top)


MODEL_CLASSES = {QWEN2_VL: Qwen2VLForConditionalGeneration, QWEN3_VL: Qwen3VLForConditionalGeneration,
            QWEN3_VL_MOE: Qwen3VLMoeForConditionalGeneration}


def init_experts(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with its MoE expert tensors and routers drawn from N(0, 0.02) (transformers leaves them
    uninitialised); nothing for a dense model."""
    for module in model.modules():
        if hasattr(module, "gate_up_proj"):
            torch.nn.init.normal_(module.gate_up_proj, std=0.02)
            torch.nn.init.normal_(module.down_proj, std=0.02)
        if type(module).__name__.endswith("TopKRouter"):
            torch.nn.init.normal_(module.weight, std=0.02)
    return model


def build_tiny_family(name: str, seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.nn.Module, object]:
    """The tiny model ``name`` (a ``TINY_FAMILIES`` key; random weights from ``seed``) and its processor."""
    family = TINY_FAMILIES[name]
    processor = build_processor(family)
    config = tiny_config(family, processor.tokenizer)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = init_experts(MODEL_CLASSES[family](config))
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    return model.to(dtype).eval(), processor
