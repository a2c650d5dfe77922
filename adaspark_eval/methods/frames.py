"""``frames``: the dense model on fewer frames, sampled uniformly, to a FLOP budget.

The frame count is the even ``n`` in ``[2, F]`` (``F``: the run's ``--frames``) whose dense LLM-prefill
FLOPs (``flops.analytic``) come nearest to ``frame_budget`` times those at ``F`` frames (ties to fewer
frames), for square frames of the largest size the run reads (``max_pixels``, capped by
qwen_vl_utils' per-frame limit) and ``TEXT_TOKENS`` text tokens. Videos are then read at ``n``
frames (lmms-eval's ``max_num_frames``; qwen_vl_utils samples them uniformly). A file of fewer than ``F``
frames has the budget applied to its own count (``frames_for``: decided where the file is decoded).

FLOPs: actual from the records of the ``n``-frame run; dense from the analytic dense model on the same
sample at ``F`` frames (each video grid's ``t`` scaled by ``F / n``), so the reduction is against the
full-frame dense model (``min(F, frames in the file)``), vision encoder included. One approximation: the
frame size is taken not to depend on the frame count (true below qwen_vl_utils' total-pixel cap, some 300
frames).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from qwen_vl_utils.vision_process import VIDEO_MAX_TOKEN_NUM

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.flops.analytic import Grid, dense_flops
from adaspark_eval.flops.counter import GridsLike, count_sample
from adaspark_eval.flops.dims import ModelDims
from adaspark_eval.flops.sample import ComponentFlops, SampleFlops
from adaspark_eval.methods.base import Method, dense_knobs, fraction
from adaspark_eval.sparse.stats import ForwardRecord

if TYPE_CHECKING:
    from adaspark_eval.data.video import VideoSettings

TEXT_TOKENS = 128  # text tokens of a typical prompt, for the choice of the frame count only
PIXELS_PER_TOKEN = 28 * 28  # one LLM token per 2x2 patches of 14 pixels, per temporal group


def full_frames(video: VideoSettings) -> int:
    """The run's frame count ``F`` (even, at least 2, as ``lmms.inputs`` reads it)."""
    return max(2, video.max_num_frames // 2 * 2)


def frame_count(dims: ModelDims, budget: float, video: VideoSettings) -> int:
    """The even frame count whose dense LLM-prefill FLOPs best match ``budget`` of those at ``F`` frames."""
    if video.fps is not None:
        raise ConfigError("method frames sets the frame count: pass --frames N (max_num_frames) instead of --fps")
    tokens = min(video.max_pixels, VIDEO_MAX_TOKEN_NUM * PIXELS_PER_TOKEN) // PIXELS_PER_TOKEN
    side = dims.vision.merge * max(1, math.isqrt(tokens))  # patches on a side of a square frame

    def prefill(frames: int) -> int:
        grid = (frames // dims.vision.temporal_patch, side, side)
        return dense_flops(dims, text_tokens=TEXT_TOKENS, grids=[grid]).llm_prefill.dense

    target = budget * prefill(full_frames(video))
    return min(range(2, full_frames(video) + 1, 2), key=lambda n: abs(prefill(n) - target))


def file_full_frames(video: VideoSettings, file_frames: int) -> int:
    """The frames the full run reads from a file of ``file_frames`` frames (even, at least 2)."""
    return max(2, min(full_frames(video), file_frames) // 2 * 2)


def file_frame_count(dims: ModelDims, budget: float, video: VideoSettings, file_frames: int) -> int:
    """``frame_count`` for one file: the budget against the frames the full run reads from it."""
    return frame_count(dims, budget, dataclasses.replace(video, max_num_frames=file_full_frames(video, file_frames)))


def _rows(grids: GridsLike) -> list[Grid]:
    return [] if grids is None else [tuple(int(v) for v in row) for row in torch.as_tensor(grids).reshape(-1, 3)]


@dataclass(frozen=True)
class Frames(Method):
    """Fewer frames, dense model: ``frame_budget`` is the fraction of the full-frame dense LLM-prefill FLOPs."""

    name = "frames"
    summary = "dense model on fewer frames: the count whose dense FLOPs best match --frame-budget of full"
    frame_budget: float = 0.5

    def validate(self) -> None:
        fraction("frame_budget", self.frame_budget)

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        return dense_knobs(knobs)

    def video(self, video: VideoSettings, dims: ModelDims) -> VideoSettings:
        return dataclasses.replace(video, max_num_frames=frame_count(dims, self.frame_budget, video))

    def frames_for(self, video: VideoSettings, dims: ModelDims) -> Callable[[int], int]:
        """The budget applied to the frames each file gives: the count for ``min(F, file frames)``."""
        return functools.partial(file_frame_count, dims, self.frame_budget, video)

    def count(self, dims: ModelDims, records: Sequence[ForwardRecord], *, video_grid_thw: GridsLike,
              image_grid_thw: GridsLike, video: VideoSettings, file_frames: int | None = None) -> SampleFlops:
        """Actual from the records, dense at the frames the full run would read from this file."""
        actual = count_sample(dims, records, video_grid_thw=video_grid_thw, image_grid_thw=image_grid_thw)
        if file_frames is not None:
            video = dataclasses.replace(video, max_num_frames=file_full_frames(video, file_frames))
        chosen, full, step = frame_count(dims, self.frame_budget, video), full_frames(video), dims.vision.temporal_patch
        videos, images = _rows(video_grid_thw), _rows(image_grid_thw)
        visual = sum(t * h * w for t, h, w in videos + images) // dims.vision.merge**2
        grids = [(t * full // chosen if t * step >= chosen else t, h, w) for t, h, w in videos] + images
        reference = dense_flops(dims, text_tokens=records[0].q_len - visual, grids=grids,
                                decode_steps=len(records) - 1)
        return SampleFlops({name: ComponentFlops(part.actual, reference.components[name].dense)
                            for name, part in actual.components.items()})

    def describe(self, config: AdaSparkConfig) -> dict[str, Any]:
        return self.settings()
