"""A tiny random-weight Qwen2.5-VL that runs offline: the real transformers classes with a small config,
a small byte-level BPE tokenizer carrying the real model's special tokens and chat template, and a
real ``Qwen2_5_VLProcessor`` (patch 14, temporal patch 2, merge 2: the same token arithmetic).
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

# The special tokens of Qwen2.5-VL, in the order of their ids in the real vocabulary (151643...).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]

# Qwen2.5-VL-Instruct's chat template (from its tokenizer/processor config).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "You are a helpful assistant. Select the best answer to the following multiple-choice question based on "
    "the video. Respond with only the letter (A, B, C, or D) of the correct option. The best answer is",
    "What colour was the object inserted into the video? What shape appeared? In which order did the needles "
    "appear? How many times did it appear? Answer with the option's letter from the given choices directly.",
    "red green blue yellow white black orange purple circle square triangle star cat dog car tree house "
    "A. B. C. D. 0 1 2 3 4 5 6 7 8 9 first second third before after during long short medium video frame",
    "Question: Options: Answer: The video shows a person who is walking, talking, cooking, playing sports.",
]


def build_tokenizer(vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A deterministic byte-level BPE tokenizer with Qwen2.5-VL's special tokens and chat template."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        model_max_length=131072,
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"},
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_processor(tokenizer: PreTrainedTokenizerFast | None = None, max_pixels: int = 448 * 448,
                    min_pixels: int = 28 * 28) -> Qwen2_5_VLProcessor:
    """A real Qwen2.5-VL processor around the tiny tokenizer (the real patch and merge sizes)."""
    tokenizer = tokenizer or build_tokenizer()
    sizes = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    image_processor = Qwen2VLImageProcessor(size=sizes, patch_size=14, temporal_patch_size=2, merge_size=2)
    video_processor = Qwen2VLVideoProcessor(size=sizes, patch_size=14, temporal_patch_size=2, merge_size=2,
                                            cap_pixels_per_frame=True)
    return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               video_processor=video_processor, chat_template=CHAT_TEMPLATE)


def tiny_config(tokenizer: PreTrainedTokenizerFast, hidden_size: int = 64, layers: int = 4, heads: int = 4,
                kv_heads: int = 2, vision_hidden: int = 32, vision_depth: int = 2) -> Qwen2_5_VLConfig:
    """A small Qwen2.5-VL config around ``tokenizer``; by default 4 decoder layers of 4 query / 2 KV heads
    (head dim 16) and a 2-block ViT. The ViT keeps the real patch, merge and window sizes."""
    ids = tokenizer.convert_tokens_to_ids
    half_head = hidden_size // heads // 2
    mrope = [half_head // 4, (half_head - half_head // 4) // 2]
    text = {
        "vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"), "pad_token_id": ids("<|endoftext|>"),
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                            "mrope_section": [mrope[0], mrope[1], half_head - sum(mrope)]},
    }
    vision = {
        "depth": vision_depth, "hidden_size": vision_hidden, "intermediate_size": 2 * vision_hidden,
        "num_heads": max(2, vision_hidden // 32), "out_hidden_size": hidden_size, "patch_size": 14,
        "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
        "fullatt_block_indexes": [vision_depth - 1], "tokens_per_second": 2,
    }
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=False,
    )


def build_tiny(seed: int = 0, dtype: torch.dtype = torch.float32
               ) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]:
    """The tiny model (random weights from ``seed``) and its processor."""
    processor = build_processor()
    config = tiny_config(processor.tokenizer)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    return model.to(dtype).eval(), processor
