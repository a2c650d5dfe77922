"""The LLM-prefill FLOP reduction that ``inspect`` reports."""

from __future__ import annotations

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.inspection import compare
from adaspark_eval.sparse.runtime import SparseRuntime


def test_reduction_is_what_the_sparse_prefill_saved(tiny, video_inputs):
    model, _ = tiny
    controller = SparseRuntime.attach(model, AdaSparkConfig())
    try:
        sparse = compare(controller, video_inputs, AdaSparkConfig(p=0.5, cube=(2, 2, 2)))
        exact = compare(controller, video_inputs, AdaSparkConfig(p=1.0, cube=(2, 2, 2)))
    finally:
        controller.detach()
    prefill = sparse.flops.llm_prefill
    assert 0 < sparse.llm_prefill_flop_reduction == 1 - prefill.actual / prefill.dense < 1
    # p = 1 prunes nothing: the only difference from dense is the selection's own cost
    selection = exact.flops.components["selection"].actual
    assert selection > 0 and exact.flops.llm_prefill.actual - exact.flops.llm_prefill.dense == selection
    assert exact.llm_prefill_flop_reduction < 0
