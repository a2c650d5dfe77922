"""fvcore over the tiny model's forward (with our handles) gives the in-run counter's FLOPs, component by
component, dense and sparse."""

from __future__ import annotations

import pytest
import torch

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.flops.fvcore_count import count_forward
from adaspark_eval.sparse.runtime import SparseRuntime


@pytest.mark.parametrize("config", [
    AdaSparkConfig(attention=False, ffn=False),
    AdaSparkConfig(p=0.5, cube=(2, 2, 2)),
    AdaSparkConfig(p=0.5, cube=(2, 2, 2), select="cube", ffn_group="grid"),
], ids=["dense", "p0.5", "p0.5-cube-select"])
def test_fvcore_equals_the_in_run_counter(tiny, video_inputs, config):
    model, _ = tiny
    controller = SparseRuntime.attach(model, config)
    try:
        traced = count_forward(model, video_inputs)
        counted = count_sample(model.config, controller.records, video_grid_thw=video_inputs["video_grid_thw"])
    finally:
        controller.detach()
    assert traced == {name: c.actual for name, c in counted.components.items() if name != "decode"}
    if config.attention:  # the comparison covers pruned work, not only dense work
        for name in ("attention", "ffn"):
            assert counted.components[name].actual < counted.components[name].dense
        assert counted.components["selection"].actual > 0


def test_a_batch_is_refused(tiny, video_inputs):
    batch = {name: torch.cat([value, value]) for name, value in video_inputs.items()}
    with pytest.raises(ValueError, match="one sample"):
        count_forward(tiny[0], batch)
