"""Fused elementwise ops swapped into Qwen2.5-VL: RMSNorm, rotary embedding, SiLU-and-multiply.

The kernels and why they pay are in ``sparse.kernels.fused``. ``fuse(model)`` swaps the model's RMSNorms (the
vision tower's too) and the language model's MLPs for fused subclasses and routes ``apply_rotary_pos_emb`` (a
module-level function of transformers' Qwen2.5-VL code) through the fused kernel for CUDA tensors;
``unfuse(model)`` undoes it. The kernels run on CUDA, and on the CPU only under ``TRITON_INTERPRET=1`` (the
tests); elsewhere the fused classes and function fall back to transformers' own.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

from adaspark_eval.sparse.kernels.dot import INTERPRETED
from adaspark_eval.sparse.kernels.fused import rms_norm, rotary_embedding, silu_mul

ORIGINAL_ROTARY = qwen.apply_rotary_pos_emb


class FusedOpsError(ValueError):
    """``--fused-ops`` asked where its kernels cannot run."""


def apply_rotary_pos_emb(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor,
                         unsqueeze_dim: int = 1) -> tuple[Tensor, Tensor]:
    """Transformers' ``apply_rotary_pos_emb`` for (B, H, S, D) queries / keys: fused where the kernels run."""
    if unsqueeze_dim != 1 or not runs_on(q.device) or q.stride(-1) != 1 or k.stride(-1) != 1:
        return ORIGINAL_ROTARY(q, k, cos, sin, unsqueeze_dim)
    return rotary_embedding(q, cos, sin), rotary_embedding(k, cos, sin)


class FusedRMSNorm(qwen.Qwen2_5_VLRMSNorm):
    """``Qwen2_5_VLRMSNorm`` in one kernel where the kernels run."""

    def forward(self, hidden_states: Tensor) -> Tensor:
        if not runs_on(hidden_states.device):
            return super().forward(hidden_states)
        return rms_norm(hidden_states, self.weight, self.variance_epsilon)


class FusedMLP(qwen.Qwen2MLP):
    """``Qwen2MLP`` (SiLU-gated) with its activation and product in one kernel where the kernels run."""

    def forward(self, x: Tensor) -> Tensor:
        if not runs_on(x.device) or self.config.hidden_act != "silu":
            return super().forward(x)
        return self.down_proj(silu_mul(self.gate_proj(x), self.up_proj(x)))


FUSED = {qwen.Qwen2_5_VLRMSNorm: FusedRMSNorm, qwen.Qwen2MLP: FusedMLP}


def runs_on(device: torch.device) -> bool:
    """Whether the fused kernels can run on ``device`` (CUDA, or the CPU under ``TRITON_INTERPRET=1``)."""
    return device.type == "cuda" or bool(INTERPRETED)


def _swap_class(module: nn.Module, cls: type) -> None:
    """Give ``module`` the class ``cls``; behind accelerate's device hook (a mapped model), re-point the
    forward it wraps."""
    module.__class__ = cls
    if hasattr(module, "_old_forward"):
        module._old_forward = cls.forward.__get__(module)


def fuse(model: nn.Module) -> nn.Module:
    """Swap the RMSNorms and the language model's MLPs of ``model`` for the fused classes and route
    transformers' rotary embedding through the fused kernel; returns ``model``."""
    for module in model.modules():
        if type(module) in FUSED:
            _swap_class(module, FUSED[type(module)])
    qwen.apply_rotary_pos_emb = apply_rotary_pos_emb
    return model


def unfuse(model: nn.Module) -> nn.Module:
    """Undo ``fuse``; returns ``model``."""
    originals = {fused: original for original, fused in FUSED.items()}
    for module in model.modules():
        if type(module) in originals:
            _swap_class(module, originals[type(module)])
    qwen.apply_rotary_pos_emb = ORIGINAL_ROTARY
    return model
