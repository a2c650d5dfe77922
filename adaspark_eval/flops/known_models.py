"""The public Qwen2.5-VL Instruct configs (``config.json`` of each model card), as keyword arguments of
``transformers.Qwen2_5_VLConfig``: only the fields that shape the FLOPs; no weights.

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
    return {"text_config": text, "vision_config": vision, "tie_word_embeddings": tied}


KNOWN_MODELS: dict[str, dict[str, Any]] = {
    "qwen2.5-vl-3b": _config(2048, 36, 16, 2, 11008, 151936, 3420, tied=True),
    "qwen2.5-vl-7b": _config(3584, 28, 28, 4, 18944, 152064, 3420, tied=False),
    "qwen2.5-vl-32b": _config(5120, 64, 40, 8, 27648, 152064, 3456, tied=False),
    "qwen2.5-vl-72b": _config(8192, 80, 64, 8, 29568, 152064, 3456, tied=False),
}
