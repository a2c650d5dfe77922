"""``topk``: AdaSpark with a fixed fraction of cubes and tokens kept (the paper's fixed-ratio ablation)
instead of top-p: each visual query keeps the ``ceil(r * candidates)`` highest-scoring cubes, each FFN
group its ``ceil(r * tokens)`` largest-norm tokens, ``r`` being the ``fixed_ratio`` knob."""

from __future__ import annotations

from dataclasses import dataclass

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.methods.base import Method


@dataclass(frozen=True)
class TopK(Method):
    """Fixed-ratio AdaSpark: the ``fixed_ratio`` knob is required (``p`` is unused, reset to its default)."""

    name = "topk"
    summary = "AdaSpark keeping a fixed fraction (--fixed-ratio) of cubes and tokens instead of top-p"

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        if knobs.fixed_ratio is None:
            raise ConfigError("method topk keeps a fixed fraction of cubes and tokens: pass --fixed-ratio R "
                              "(model arg fixed_ratio=R), e.g. 0.5")
        return knobs.replace(p=AdaSparkConfig.p, p_attn=None, p_ffn=None)
