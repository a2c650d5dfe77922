"""Which implementation runs AdaSpark: the Triton kernels on CUDA, the reference path elsewhere.

The ``backend`` knob: ``auto`` uses the kernels for CUDA tensors when Triton is installed, ``triton``
always (on the CPU only under ``TRITON_INTERPRET=1``), ``reference`` never. ``fa4`` is ``auto`` with
AdaS-Attn's attention on flash-attn-4's block-sparse kernels where they express the layer exactly
(``select=cube``, units of 64 or 128 slots: ``kernels.fa4.expresses``); the project's kernel elsewhere.
``attn_impl=fa4`` runs the dense prefill attention (no padding mask, bf16/fp16) on flash-attn-4.

The kernels cover a bf16 or fp16 prefill without a padding mask; every other call (decode steps, a KV cache, padding, float32, a head
dim that is not a power of two, units of more than ``MAX_TILE`` tokens, more than ``MAX_COLUMNS``
candidate units) runs the reference path whatever the knob says.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor

from adaspark_eval.sparse import ffn as reference_ffn
from adaspark_eval.sparse.attention import AttentionRule
from adaspark_eval.sparse.kernels.tiles import build_tiles
from adaspark_eval.sparse.layout import TokenLayout
from adaspark_eval.sparse.state import ForwardState
from adaspark_eval.sparse.stats import AttentionStats

MAX_TILE = 128  # tokens of the largest unit (one tile of the attention kernel)
# candidate units (columns) the kernels take: 2,048 cubes of 4x4x4 tokens hold 131k video tokens, past Qwen2.5-VL's
# 128k context; the selection kernels fit a Hopper block's shared memory up to there
# (tests/sparse/test_selection_resources.py), with the cube kernel's score loop buffering fewer stages past 1,024
MAX_COLUMNS = 2048
KERNEL_DTYPES = (torch.bfloat16, torch.float16)


def triton_problem(backend: str, device: str | torch.device | None = None) -> str | None:
    """Why ``backend=triton`` cannot run its kernels on ``device`` (None: CUDA when there is one), as one line
    naming the fix; None where it can (a CUDA device, or the CPU under ``TRITON_INTERPRET=1``) or for another
    backend (``auto`` falls back to the reference path by itself)."""
    if backend != "triton":
        return None
    where = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if where.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1":
        return None
    return (f"backend=triton runs Triton kernels, which need a CUDA GPU, not {where.type} (or TRITON_INTERPRET=1 on "
            "the CPU, slow): pass --device cuda, or backend=auto / reference")


def use_kernels(backend: str, tensor: Tensor) -> bool:
    """Whether ``backend`` picks the kernels for a call on ``tensor``."""
    if backend == "reference":
        return False
    if backend == "triton":
        return True
    return tensor.is_cuda and importlib.util.find_spec("triton") is not None


class FfnFunctions(NamedTuple):
    """``keep_tokens`` and ``sparse_ffn`` of one implementation (same signatures as ``sparse.ffn``)."""

    keep_tokens: Callable[..., Tensor]
    sparse_ffn: Callable[..., Tensor]


def ffn_functions(backend: str, hidden: Tensor, state: ForwardState | None = None) -> FfnFunctions:
    """The AdaS-FFN functions for a prefill on ``hidden`` (B, S, D); the kernels build their group lists once
    per ``state`` (the forward in flight; None: once per call)."""
    if use_kernels(backend, hidden) and hidden.dtype in KERNEL_DTYPES:
        from adaspark_eval.sparse.kernels import ffn

        return FfnFunctions(partial(ffn.keep_tokens, state=state), partial(ffn.sparse_ffn, state=state))
    return FfnFunctions(reference_ffn.keep_tokens, reference_ffn.sparse_ffn)


def attention(backend: str, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
              layout: TokenLayout, rule: AttentionRule, scaling: float,
              state: ForwardState | None = None) -> tuple[Tensor, AttentionStats] | None:
    """Kernel AdaS-Attn of one layer: output (B, S, H, D) and statistics, or None where the reference runs.

    Args:
        query: (B, H, Sq, D); key, value: (B, Hkv, Sk, D), post-RoPE; attention_mask: transformers' mask.
        state: the forward in flight, whose tiles of ``layout`` every layer shares (None: built for this call).
    """
    head_dim = query.shape[-1]
    if (not use_kernels(backend, query) or rule.decode or attention_mask is not None
            or query.dtype not in KERNEL_DTYPES or head_dim < 16 or head_dim & (head_dim - 1)
            or not query.shape[2] == key.shape[2] == layout.seq_len):
        return None
    tiles = build_tiles(layout, rule.text_keys) if state is None else state.tiles(layout, rule.text_keys)
    if tiles.tile > MAX_TILE or tiles.num_columns > MAX_COLUMNS:
        return None
    if backend == "fa4":
        from adaspark_eval.sparse.kernels import fa4

        if fa4.expresses(rule, tiles):
            return fa4.fa4_attention(query, key, value, layout, tiles, rule, scaling, state)
    from adaspark_eval.sparse.kernels.attention import kernel_attention

    return kernel_attention(query, key, value, layout, tiles, rule, scaling, state)


def dense_attention(attn_impl: str, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
                    scaling: float) -> Tensor | None:
    """Dense causal attention on flash-attn-4 (``attn_impl=fa4``) of a prefill without padding mask: (B, S, H, D),
    or None where sdpa runs (``attn_impl=sdpa``, decode steps, a mask, float32, the CPU).

    Args:
        query: (B, H, S, D); key, value: (B, Hkv, S, D).
    """
    if (attn_impl != "fa4" or attention_mask is not None or not query.is_cuda or query.dtype not in KERNEL_DTYPES
            or query.shape[2] != key.shape[2]):
        return None
    from adaspark_eval.sparse.kernels import fa4

    return fa4.dense(query, key, value, scaling)
