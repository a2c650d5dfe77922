"""FLOPs of one sample by component: what was computed (``actual``) and what the dense model computes on
the same input (``dense``). FLOPs are ints, 2 per multiply-add."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

COMPONENTS = ("vision_encoder", "projections", "attention", "selection", "ffn", "lm_head", "decode")
"""Vision encoder; LLM prefill: q/k/v/o projections, attention scores + values, AdaS-Attn selection (cube means
and ``q . kbar``), FFN, LM head (next-token logits); all decode steps together."""
LLM_PREFILL = ("projections", "attention", "selection", "ffn", "lm_head")
FLOPS_NOTE = "1 multiply-add = 2 FLOPs"


@dataclass(frozen=True)
class ComponentFlops:
    actual: int
    dense: int

    @property
    def reduction(self) -> float:
        """``1 - actual / dense`` (0 where dense is 0); negative when the selection costs more than it saves."""
        return 1.0 - self.actual / self.dense if self.dense else 0.0

    def __add__(self, other: ComponentFlops) -> ComponentFlops:
        return ComponentFlops(self.actual + other.actual, self.dense + other.dense)


@dataclass(frozen=True)
class SampleFlops:
    """``components``: name (``COMPONENTS``) -> its FLOPs."""

    components: dict[str, ComponentFlops]

    @property
    def llm_prefill(self) -> ComponentFlops:
        return sum((self.components[name] for name in LLM_PREFILL), ComponentFlops(0, 0))

    @property
    def total(self) -> ComponentFlops:
        return sum(self.components.values(), ComponentFlops(0, 0))

    def to_dict(self) -> dict[str, Any]:
        """``{"components": {name: {"actual", "dense"}}, "llm_prefill": {"actual", "dense", "reduction"},
        "total": {...}}`` (the ``flops`` field of a results sample)."""
        totals = {"llm_prefill": self.llm_prefill, "total": self.total}
        return {
            "components": {name: {"actual": c.actual, "dense": c.dense} for name, c in self.components.items()},
            **{name: {"actual": c.actual, "dense": c.dense, "reduction": c.reduction} for name, c in totals.items()},
        }

    def table(self) -> pd.DataFrame:
        """One row per component, then ``llm_prefill`` and ``total``: actual and dense TFLOPs, reduction."""
        rows = {**self.components, "llm_prefill": self.llm_prefill, "total": self.total}
        return pd.DataFrame(
            {f"actual TFLOPs ({FLOPS_NOTE})": [c.actual / 1e12 for c in rows.values()],
             f"dense TFLOPs ({FLOPS_NOTE})": [c.dense / 1e12 for c in rows.values()],
             "reduction": [c.reduction for c in rows.values()]},
            index=pd.Index(list(rows), name="component"),
        )
