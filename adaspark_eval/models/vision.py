"""Qwen2.5-VL's vision encoder with its window attention batched (opt-in: ``--batched-vision``).

Transformers' sdpa path of ``Qwen2_5_VLVisionAttention`` runs one attention call per window of the
``cu_seqlens`` partition: at 32 frames of 560x1008 that is ~720 windows of 64 patches in each of the 28
window layers, ~20k small calls per sample, whose launch overhead leaves the GPU mostly idle (the vision
encoder took ~1.2 s per sample on an H200, benchmarks/EVAL_THROUGHPUT.md). ``BatchedVisionAttention``
computes the same attention with one call per distinct window length: windows of equal length are gathered
into a batch ``(n, heads, length, head_dim)``, attended, and scattered back.

Each window is still attended on its own (no mask, no padding), but the kernel sees a batch, so its
results can differ from the per-window calls in the last bit on some backends; the option therefore enters
the config key (like ``--fused-ops``), and the default stays transformers' own path, which reproduces
lmms-eval's stock predictions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen


def windows_by_length(cu_seqlens: Tensor) -> dict[int, Tensor]:
    """The start of every window of the partition ``cu_seqlens`` (N + 1,), grouped by window length:
    ``{length: starts (n,)}`` on ``cu_seqlens``' device (one host sync, as transformers' own split)."""
    starts, lengths = cu_seqlens[:-1], cu_seqlens[1:] - cu_seqlens[:-1]
    return {int(length): starts[lengths == length] for length in torch.unique(lengths).tolist() if length > 0}


class BatchedVisionAttention(qwen.Qwen2_5_VLVisionAttention):
    """``Qwen2_5_VLVisionAttention`` with one scaled-dot-product call per window length."""

    def forward(self, hidden_states: Tensor, cu_seqlens: Tensor,
                position_embeddings: tuple[Tensor, Tensor] | None = None, max_seqlen: int | None = None,
                **kwargs) -> Tensor:
        """hidden_states (S, dim) -> (S, dim); ``cu_seqlens`` (N + 1,) partitions S into windows."""
        seq_length = hidden_states.shape[0]
        qkv = self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1)
        query, key, value = qkv.permute(1, 0, 2, 3).unbind(0)
        cos, sin = position_embeddings
        query, key = qwen.apply_rotary_pos_emb_vision(query, key, cos, sin)  # (S, H, D) each
        output = torch.empty_like(query)
        for length, starts in windows_by_length(cu_seqlens).items():
            rows = (starts[:, None] + torch.arange(length, device=starts.device)).reshape(-1)  # (n * L,)
            q, k, v = (x[rows].unflatten(0, (-1, length)).transpose(1, 2) for x in (query, key, value))  # (n, H, L, D)
            attended = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, scale=self.scaling, is_causal=False)
            output[rows] = attended.transpose(1, 2).reshape(-1, self.num_heads, output.shape[-1])
        return self.proj(output.reshape(seq_length, -1).contiguous())


def batch_vision(model: nn.Module) -> nn.Module:
    """Swap every vision attention module of ``model`` for ``BatchedVisionAttention`` (same parameters)."""
    for module in model.modules():
        if type(module) is qwen.Qwen2_5_VLVisionAttention:
            module.__class__ = BatchedVisionAttention
    return model


def unbatch_vision(model: nn.Module) -> nn.Module:
    """Transformers' own per-window vision attention again."""
    for module in model.modules():
        if type(module) is BatchedVisionAttention:
            module.__class__ = qwen.Qwen2_5_VLVisionAttention
    return model
