"""One layer of AdaSpark attention as a single node of a JIT trace, so that fvcore counts it by the work
it recorded rather than by the shapes of what the reference implementation computes (a dense score
matrix and a mask; its mask is even materialised from data under tracing).

Outside a trace this is a plain call: the model runs exactly the same ops.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from adaspark_eval.sparse.stats import AttentionStats

Attend = Callable[[Tensor, Tensor, Tensor], Tensor]
StatsOf = Callable[[], AttentionStats]


class LlmAttention(torch.autograd.Function):
    """Traced as ``prim::PythonOp.LlmAttention``; its scalar arguments are ``attend`` and ``stats``."""

    @staticmethod
    def forward(ctx, attend: Attend, stats: StatsOf, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        tracing = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)  # the inside reads traced tensors that are not its inputs: keep it out
        try:
            return attend(query, key, value)
        finally:
            torch._C._set_tracing_state(tracing)


TRACE_KIND = f"prim::PythonOp.{LlmAttention.__name__}"


def traced_as_one_op(attend: Attend, query: Tensor, key: Tensor, value: Tensor, stats: StatsOf) -> Tensor:
    """``attend(query, key, value)``; under ``torch.jit`` tracing, one ``TRACE_KIND`` node.

    Args:
        query: (B, H, Sq, D); key, value: (B, Hkv, Sk, D).
        stats: returns the layer's ``AttentionStats`` once ``attend`` has run (read when the trace is counted).
    """
    if not torch.jit.is_tracing():
        return attend(query, key, value)
    return LlmAttention.apply(attend, stats, query, key, value)


def recorded_stats(node: torch._C.Node) -> AttentionStats:
    """The ``AttentionStats`` of a traced ``TRACE_KIND`` node."""
    return node.scalar_args()[1]()
