"""Dense against sparse on one input: how far the sparse prefill moves the next-token prediction, what
each layer kept, and the FLOPs it saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import BatchFeature

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.flops.sample import SampleFlops
from adaspark_eval.sparse.runtime import SparseRuntime
from adaspark_eval.sparse.stats import ForwardRecord


@dataclass
class Comparison:
    """The dense and the sparse prefill of one input.

    ``dense_logits`` / ``sparse_logits``: (V,) float32 next-token logits. ``flops``: the sparse prefill's FLOPs
    against the dense ones of the same input.
    """

    dense_logits: torch.Tensor
    sparse_logits: torch.Tensor
    dense_record: ForwardRecord
    sparse_record: ForwardRecord
    num_layers: int
    flops: SampleFlops

    @property
    def llm_prefill_flop_reduction(self) -> float:
        """``1 - actual / dense`` FLOPs of the LLM prefill (2 per multiply-add, selection included)."""
        return self.flops.llm_prefill.reduction

    @property
    def max_abs_logit_diff(self) -> float:
        return float((self.sparse_logits - self.dense_logits).abs().max())

    @property
    def kl(self) -> float:
        """KL(dense || sparse) of the next-token distributions, in nats."""
        log_dense = torch.log_softmax(self.dense_logits, dim=-1)
        log_sparse = torch.log_softmax(self.sparse_logits, dim=-1)
        return float(torch.sum(log_dense.exp() * (log_dense - log_sparse)))

    def layers(self) -> list[dict[str, Any]]:
        return self.sparse_record.layer_summary(self.num_layers)


@torch.no_grad()
def compare(sparse: SparseRuntime, inputs: BatchFeature, config: AdaSparkConfig) -> Comparison:
    """Prefill ``inputs`` (batch of 1) densely and with ``config``; ``sparse.config`` is restored after."""
    previous = sparse.config
    try:
        sparse.config = config.replace(attention=False, ffn=False)
        dense_logits = sparse.model(**inputs).logits[0, -1].float()
        dense_record = sparse.records[0]
        sparse.config = config
        sparse_logits = sparse.model(**inputs).logits[0, -1].float()
        sparse_record = sparse.records[0]
    finally:
        sparse.config = previous
    flops = count_sample(sparse.model.config, [sparse_record], video_grid_thw=inputs.get("video_grid_thw"),
                         image_grid_thw=inputs.get("image_grid_thw"))
    return Comparison(dense_logits, sparse_logits, dense_record, sparse_record, sparse.num_layers, flops)
