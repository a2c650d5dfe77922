"""``dense``: the stock model, run through the same runtime so its records count the dense FLOPs."""

from __future__ import annotations

from dataclasses import dataclass

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.methods.base import Method, dense_knobs


@dataclass(frozen=True)
class Dense(Method):
    """AdaS-Attn and AdaS-FFN off: transformers' sdpa and the stock MLP in every layer."""

    name = "dense"
    summary = "the stock model (every knob but query_chunk/backend ignored)"

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        return dense_knobs(knobs)
