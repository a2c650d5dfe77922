"""Haystacks: the frame streams needles hide in, procedural or decoded from the user's videos.

Both kinds stream frames one at a time at the requested ``fps`` and size, so an hour-long haystack
never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from adaspark_eval.data.video import VideoError, VideoInfo, iter_frames, probe_video

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")
SCENE_SECONDS = 20.0       # a procedural haystack changes texture and shapes this often
GREY_RANGE = (48, 200)     # procedural pixels stay in this range, clear of the needles' black and white


@dataclass(frozen=True)
class ProceduralHaystack:
    """Scrolling smooth-noise textures with bouncing shapes; frame ``i`` depends only on (seed, i)."""

    seed: int

    @property
    def name(self) -> str:
        return "procedural"

    def frames(self, count: int, fps: float, size: tuple[int, int]) -> Iterator[np.ndarray]:
        """``count`` (H, W, 3) uint8 frames at ``fps``, ``size`` = (H, W)."""
        for index in range(count):
            seconds = index / fps
            scene = int(seconds // SCENE_SECONDS)
            yield _scene(self.seed, scene, size).render(seconds - scene * SCENE_SECONDS)


@dataclass(frozen=True)
class FileHaystack:
    """A user's video, resampled to the requested fps (frame k shows second k / fps, looping past
    the end) and resized."""

    path: Path
    info: VideoInfo

    @property
    def name(self) -> str:
        return self.path.name

    def frames(self, count: int, fps: float, size: tuple[int, int]) -> Iterator[np.ndarray]:
        """``count`` (H, W, 3) uint8 frames at ``fps``, ``size`` = (H, W), decoded in chunks."""
        step = self.info.fps / fps
        indices = (int(k * step) % self.info.frames for k in range(count))
        return iter_frames(self.path, indices, size=size)


def open_folder(folder: Path) -> list[FileHaystack]:
    """Every video in ``folder`` (sorted by name), probed so a bad file fails now, not mid-run."""
    if not folder.is_dir():
        raise ValueError(f"haystack folder {folder} does not exist: pass a folder of videos to --haystack")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise ValueError(f"haystack folder {folder} holds no videos ({', '.join(VIDEO_SUFFIXES)}): add some, "
                         "or leave out --haystack for procedural haystacks")
    haystacks = []
    for path in paths:
        try:
            info = probe_video(path)
        except VideoError as error:
            raise ValueError(f"{error}, or remove it from the haystack folder") from None
        if info.fps <= 0:
            raise ValueError(f"haystack {path} reports no frame rate: re-encode it, or remove it from the folder")
        haystacks.append(FileHaystack(path, info))
    return haystacks


@dataclass(frozen=True)
class _Scene:
    """One scene: a (2H, 2W, 3) texture whose (H, W) window drifts, and shapes that bounce."""

    texture: np.ndarray
    drift: np.ndarray      # (2,) texture window speed, pixels per second (y, x)
    shapes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # (mask, colour, start, speed)

    def render(self, seconds: float) -> np.ndarray:
        height, width = self.texture.shape[0] // 2, self.texture.shape[1] // 2
        y, x = (_bounce(s, span) for s, span in zip(self.drift * seconds, (height, width)))
        frame = self.texture[y:y + height, x:x + width].copy()
        for mask, colour, start, speed in self.shapes:
            side = mask.shape[0]
            top, left = (_bounce(s, span - side) for s, span in zip(start + speed * seconds, (height, width)))
            frame[top:top + side, left:left + side][mask] = colour
        return frame


def _bounce(position: float, span: int) -> int:
    """``position`` folded into [0, span] like a ball bouncing between two walls."""
    if span <= 0:
        return 0
    folded = position % (2 * span)
    return int(folded if folded <= span else 2 * span - folded)


@lru_cache(maxsize=2)
def _scene(seed: int, scene: int, size: tuple[int, int]) -> _Scene:
    rng = np.random.default_rng([seed, scene])
    height, width = size
    low, high = GREY_RANGE
    coarse = rng.random((max(2, height // 24), max(2, width // 24), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    texture = (low + smooth * (high - low)).astype(np.uint8)
    shapes = []
    for _ in range(int(rng.integers(3, 6))):
        side = int(rng.integers(max(2, min(size) // 10), max(3, min(size) // 4)))
        grid = np.arange(side) - (side - 1) / 2
        round_mask = grid[:, None] ** 2 + grid[None, :] ** 2 <= (side / 2) ** 2
        mask = round_mask if rng.random() < 0.5 else np.ones((side, side), bool)
        colour = rng.integers(low + 12, high - 12, 3).astype(np.uint8)
        start = rng.random(2) * np.array(size)
        speed = rng.uniform(-0.3, 0.3, 2) * np.array(size)
        shapes.append((mask, colour, start, speed))
    drift = rng.uniform(-0.1, 0.1, 2) * np.array(size)
    return _Scene(texture, drift, shapes)
