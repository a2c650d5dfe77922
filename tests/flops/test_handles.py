"""Our attention handles: SDPA counted from shapes (causal as torch aligns it, GQA), by fvcore and by
torch's FlopCounterMode; an explicit mask is refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from adaspark_eval.flops.handles import FLOP_COUNTER_FORMULAS, FVCORE_HANDLES


class Attend(nn.Module):
    def __init__(self, is_causal: bool, masked: bool = False) -> None:
        super().__init__()
        self.is_causal, self.masked = is_causal, masked

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool) if self.masked else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.is_causal, enable_gqa=True)


def qkv(q_len: int, k_len: int) -> tuple[torch.Tensor, ...]:
    """Batch 2, 4 query heads / 2 KV heads of dim 8 (equal key and value dims: torch's CPU flash kernel)."""
    return torch.zeros(2, 4, q_len, 8), torch.zeros(2, 2, k_len, 8), torch.zeros(2, 2, k_len, 8)


def fvcore_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    analysis = FlopCountAnalysis(module, inputs).set_op_handle(**FVCORE_HANDLES)
    analysis.unsupported_ops_warnings(False).tracer_warnings("none")
    return analysis.total()


@pytest.mark.parametrize(("q_len", "k_len", "is_causal", "pairs_per_head"), [
    (5, 5, False, 25),
    (5, 5, True, 1 + 2 + 3 + 4 + 5),
    (5, 3, True, 1 + 2 + 3 + 3 + 3),  # torch's causal: query i reads keys 0..i
])
def test_sdpa_pairs_times_key_and_value_dims(q_len, k_len, is_causal, pairs_per_head):
    expected_macs = 2 * 4 * pairs_per_head * (8 + 8)
    assert fvcore_macs(Attend(is_causal), qkv(q_len, k_len)) == expected_macs
    with FlopCounterMode(display=False, custom_mapping=FLOP_COUNTER_FORMULAS) as counter:
        Attend(is_causal)(*qkv(q_len, k_len))
    assert counter.get_total_flops() == 2 * expected_macs


def test_sdpa_with_a_mask_is_refused():
    with pytest.raises(ValueError, match="explicit mask"):
        fvcore_macs(Attend(False, masked=True), qkv(4, 4))
