"""The public Qwen2.5-VL, Qwen2-VL and Qwen3-VL Instruct configs (``config.json`` of each model card), as keyword
arguments of the family's transformers config class (``model_type`` picks it, ``sparse.families``): only the
fields that shape the FLOPs; no weights.

Qwen2.5-VL-32B's ``config.json`` omits the vision depth, heads, patch sizes, window and full-attention
blocks; transformers fills them with its defaults, which are the values written here.
"""

from __future__ import annotations

from typing import Any

_VISION = {  # shared by every size
    "depth": 32, "hidden_size": 1280, "num_heads": 16, "in_channels": 3, "patch_size": 14,
    "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
}


def _config(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vocab: int,
            vision_intermediate: int, tied: bool) -> dict[str, Any]:
    text = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "intermediate_size": intermediate, "vocab_size": vocab}
    vision = {**_VISION, "intermediate_size": vision_intermediate, "out_hidden_size": hidden}
    return {"model_type": "qwen2_5_vl", "text_config": text, "vision_config": vision, "tie_word_embeddings": tied}


def _qwen2_vl(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vocab: int,
              tied: bool) -> dict[str, Any]:
    """Qwen2-VL: a 32-block ViT of width 1280 (MLP ratio 4, no windows) under every size."""
    text = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "intermediate_size": intermediate, "vocab_size": vocab}
    vision = {"depth": 32, "embed_dim": 1280, "num_heads": 16, "mlp_ratio": 4, "hidden_size": hidden,
              "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    return {"model_type": "qwen2_vl", "text_config": text, "vision_config": vision, "tie_word_embeddings": tied}


_QWEN3_VISION_SMALL = {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "deepstack_visual_indexes": [5, 11, 17]}
_QWEN3_VISION_LARGE = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "deepstack_visual_indexes": [8, 16, 24]}


def _qwen3_vl(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vision: dict[str, Any],
              tied: bool, moe: dict[str, Any] | None = None) -> dict[str, Any]:
    """Qwen3-VL: head dim 128, vocabulary 151936, a ViT of patch 16 (no windows) with DeepStack mergers."""
    text = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "head_dim": 128, "intermediate_size": intermediate, "vocab_size": 151936,
            **(moe or {})}
    vision = {**vision, "num_heads": 16, "in_channels": 3, "patch_size": 16, "spatial_merge_size": 2,
              "temporal_patch_size": 2, "num_position_embeddings": 2304, "out_hidden_size": hidden}
    return {"model_type": "qwen3_vl_moe" if moe else "qwen3_vl", "text_config": text, "vision_config": vision,
            "tie_word_embeddings": tied}


KNOWN_MODELS: dict[str, dict[str, Any]] = {
    "qwen2.5-vl-3b": _config(2048, 36, 16, 2, 11008, 151936, 3420, tied=True),
    "qwen2.5-vl-7b": _config(3584, 28, 28, 4, 18944, 152064, 3420, tied=False),
    "qwen2.5-vl-32b": _config(5120, 64, 40, 8, 27648, 152064, 3456, tied=False),
    "qwen2.5-vl-72b": _config(8192, 80, 64, 8, 29568, 152064, 3456, tied=False),
    "qwen2-vl-2b": _qwen2_vl(1536, 28, 12, 2, 8960, 151936, tied=True),
    "qwen2-vl-7b": _qwen2_vl(3584, 28, 28, 4, 18944, 152064, tied=False),
    "qwen3-vl-2b": _qwen3_vl(2048, 28, 16, 8, 6144, _QWEN3_VISION_SMALL, tied=True),
    "qwen3-vl-4b": _qwen3_vl(2560, 36, 32, 8, 9728, _QWEN3_VISION_SMALL, tied=True),
    "qwen3-vl-8b": _qwen3_vl(4096, 36, 32, 8, 12288, _QWEN3_VISION_LARGE, tied=False),
    "qwen3-vl-32b": _qwen3_vl(5120, 64, 64, 8, 25600, _QWEN3_VISION_LARGE, tied=False),
    "qwen3-vl-30b-a3b": _qwen3_vl(2048, 48, 32, 4, 6144, _QWEN3_VISION_LARGE, tied=False,
                                  moe={"num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
                                       "decoder_sparse_step": 1, "mlp_only_layers": []}),
}
