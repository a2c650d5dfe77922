"""Frames: the frame count for a budget, and FLOPs counted against the full-frame dense model."""

from __future__ import annotations

import pytest

from adaspark_eval.config import ConfigError
from adaspark_eval.flops.analytic import dense_flops
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.flops.dims import ModelDims, known_config
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.methods import make_method
from adaspark_eval.methods.frames import frame_count
from tests.methods.conftest import attached

DIMS_7B = ModelDims.from_config(known_config("qwen2.5-vl-7b"))


def test_frame_count_follows_the_budget() -> None:
    video = VideoSettings(max_num_frames=64)
    counts = [frame_count(DIMS_7B, budget, video) for budget in (0.1, 0.25, 0.5, 0.75, 1.0)]
    assert counts == sorted(counts) and counts[-1] == 64 and all(n % 2 == 0 for n in counts)
    # attention is quadratic in tokens: half the FLOPs needs more than half the frames... but not all of them
    assert 32 <= counts[2] < 64
    assert make_method("frames", {"frame_budget": "0.5"}).video(video, DIMS_7B) == \
        VideoSettings(max_num_frames=counts[2])


def test_fps_and_bad_budgets_are_refused() -> None:
    with pytest.raises(ConfigError, match="instead of --fps"):
        frame_count(DIMS_7B, 0.5, VideoSettings(fps=1.0))
    with pytest.raises(ConfigError, match=r"frame_budget=1.5 is outside \(0, 1\]"):
        make_method("frames", {"frame_budget": 1.5})


def test_dense_reference_is_the_full_frame_count(prompt) -> None:
    model, inputs, _ = prompt
    dims = ModelDims.from_config(model.config)
    grids = inputs["video_grid_thw"]  # videos of 16 and 8 frames, as if --frames 32 had been cut to fewer
    method, full = make_method("frames", {"frame_budget": 0.3}), VideoSettings(max_num_frames=32)
    chosen = frame_count(dims, 0.3, full)
    with attached(model, "frames", {"frame_budget": 0.3}) as sparse:
        model(**inputs)
        actual = count_sample(dims, sparse.records, video_grid_thw=grids)
        flops = method.count(dims, sparse.records, video_grid_thw=grids, image_grid_thw=None, video=full)
    text = inputs["input_ids"].shape[1] - int(grids.prod(dim=1).sum()) // 4
    scaled = [(int(t) * 32 // chosen if 2 * int(t) >= chosen else int(t), int(h), int(w)) for t, h, w in grids]
    reference = dense_flops(dims, text_tokens=text, grids=scaled)
    assert flops.total.actual == actual.total.actual
    assert flops.total.dense == reference.total.dense > actual.total.dense
    one = make_method("frames", {"frame_budget": 1.0})  # budget 1: the records' own dense count
    assert one.count(dims, sparse.records, video_grid_thw=grids, image_grid_thw=None,
                     video=VideoSettings(max_num_frames=16)).to_dict() == actual.to_dict()
