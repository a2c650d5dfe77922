"""Op handles of our own: attention for fvcore (whose defaults count ``aten::scaled_dot_product_attention``
as zero) and for ``torch.utils.flop_counter`` (which has no formula for the CPU SDPA kernel).

fvcore handles return multiply-adds (fvcore's unit); the ``FlopCounterMode`` formula returns FLOPs
(2 per multiply-add, that counter's unit). A key/query pair costs ``q . k`` (``Dk``) plus ``p * v`` (``Dv``)
multiply-adds per head.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from fvcore.nn.jit_handles import get_shape

from adaspark_eval.sparse.region import TRACE_KIND, recorded_stats


def sdpa_macs(query: list[int], key: list[int], value: list[int], is_causal: bool) -> int:
    """Multiply-adds of SDPA without an explicit mask. Shapes (B, H, Sq, Dk), (B, Hkv, Sk, Dk), (B, Hkv, Sk, Dv);
    ``is_causal`` as torch aligns it: query i reads keys 0..i."""
    bsz, heads, q_len, dk = query
    k_len, dv = key[-2], value[-1]
    if is_causal:
        seen = min(q_len, k_len)
        pairs = seen * (seen + 1) // 2 + (q_len - seen) * k_len
    else:
        pairs = q_len * k_len
    return bsz * heads * pairs * (dk + dv)


def sdpa_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle of ``aten::scaled_dot_product_attention`` (query, key, value, attn_mask, dropout_p,
    is_causal, ...)."""
    if inputs[3].type().kind() != "NoneType":
        raise ValueError("scaled_dot_product_attention with an explicit mask: its key/query pairs are data, not "
                         "shapes; count the LLM with AdaSpark attached (fvcore_count does), which records them")
    return sdpa_macs(get_shape(inputs[0]), get_shape(inputs[1]), get_shape(inputs[2]), bool(inputs[5].toIValue()))


def llm_attention_handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
    """fvcore handle of a ``region.TRACE_KIND`` node: the pairs and selection work its layer recorded."""
    stats = recorded_stats(outputs[0].node())
    dk, dv = get_shape(inputs[0])[-1], get_shape(inputs[2])[-1]
    vectors = sum(int(v.sum()) for v in (stats.score_dots, stats.key_means, stats.query_means) if v is not None)
    return Counter({"attention": int(stats.pairs.sum()) * (dk + dv), "selection": vectors * dk})


def grouped_mm_handle(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle of ``aten::_grouped_mm`` (the routed experts of an MoE block, transformers' default experts
    implementation): rows (S, K) sorted by expert times each row's expert (E, K, N), ``S * K * N`` multiply-adds
    (S = tokens x experts per token)."""
    rows, width = get_shape(inputs[0])
    return rows * width * get_shape(inputs[1])[-1]


def not_counted(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle of an elementwise op this package does not count (fvcore's own ``None`` does not override
    a default handle)."""
    return 0


FVCORE_HANDLES = {"aten::scaled_dot_product_attention": sdpa_handle, TRACE_KIND: llm_attention_handle,
                  "aten::_grouped_mm": grouped_mm_handle,
                  # LayerNorm (Qwen2-VL's and Qwen3-VL's ViT) is elementwise, like the RMSNorms: not counted
                  "aten::layer_norm": not_counted}


def cpu_sdpa_formula(query_shape: torch.Size, key_shape: torch.Size, value_shape: torch.Size, dropout_p: float = 0.0,
                     is_causal: bool = False, *, attn_mask: Any = None, out_shape: Any = None, **kwargs: Any) -> int:
    """``FlopCounterMode`` formula of ``aten._scaled_dot_product_flash_attention_for_cpu``, in FLOPs."""
    if attn_mask is not None:
        raise ValueError("SDPA with an explicit mask cannot be counted from shapes: count an unmasked forward")
    return 2 * sdpa_macs(list(query_shape), list(key_shape), list(value_shape), is_causal)


FLOP_COUNTER_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa_formula}
