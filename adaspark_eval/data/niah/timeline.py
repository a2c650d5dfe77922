"""Where needles go in the output video, and the frame stream that puts them there.

Times are output frame indices. Edit needles paint over the haystack frames at their place; insert
needles are frames of their own spliced in there, so the haystack supplies fewer frames and the
video keeps the requested length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from adaspark_eval.data.niah.needles import Needle, draw


@dataclass(frozen=True)
class Placement:
    """A needle shown on output frames ``start`` .. ``start + frames - 1``."""

    needle: Needle
    start: int
    frames: int


def place(needles: tuple[Needle, ...], total: int, frames: int, rng: np.random.Generator,
          depth: float | None = None) -> list[Placement]:
    """Non-overlapping placements, in order, each ``frames`` long, in a ``total``-frame video.

    A lone needle starts at ``depth`` (fraction of the free span; drawn uniformly when None). Several
    needles spread at random, at least ``frames`` apart so neighbours never merge into one.
    """
    count = len(needles)
    gap = frames if count > 1 else 0
    free = total - count * frames - (count - 1) * gap
    if free < 0:
        raise ValueError(f"a {total}-frame video cannot hold {count} needle(s) of {frames} frame(s) with gaps: "
                         "raise --length or --fps, or lower --needles or --duration")
    if count == 1:
        offsets = [round((rng.random() if depth is None else depth) * free)]
    else:
        offsets = sorted(int(o) for o in rng.integers(0, free + 1, size=count))
    return [Placement(needle, offset + i * (frames + gap), frames)
            for i, (needle, offset) in enumerate(zip(needles, offsets))]


def haystack_frames_needed(placements: list[Placement], total: int) -> int:
    """How many haystack frames a ``total``-frame video with ``placements`` consumes."""
    return total - sum(p.frames for p in placements if p.needle.inserted)


def compose(haystack: Iterator[np.ndarray], placements: list[Placement], total: int,
            size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The ``total`` output frames, (H, W, 3) uint8 with ``size`` = (H, W): haystack frames, painted
    over or interrupted by the needles at their ``placements`` (sorted, non-overlapping)."""
    pending = iter(placements)
    current = next(pending, None)
    for index in range(total):
        if current is not None and index >= current.start + current.frames:
            current = next(pending, None)
        if current is None or index < current.start:
            yield next(haystack)
            continue
        step = index - current.start
        background = None if current.needle.inserted else next(haystack)
        yield draw(current.needle, step, current.frames, background, size)
