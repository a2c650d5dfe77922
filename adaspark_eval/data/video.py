"""Video files: decode sampled or streamed frames (decord) and write frames as H.264 mp4 (PyAV), streaming."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """A video is missing or cannot be decoded; the message names the file and the fix."""


@dataclass(frozen=True)
class VideoSettings:
    """How videos are sampled and sized; the defaults are the stock lmms-eval class's.

    Attributes:
        max_num_frames: frames sampled uniformly when ``fps`` is None.
        fps: sample this many frames per second instead (qwen_vl_utils' rule, up to 768 frames).
        min_pixels / max_pixels: bounds on pixels per frame; qwen_vl_utils lowers ``max_pixels`` further so
            that all frames together stay within its total-pixel budget (90% of 128k tokens).
    """

    max_num_frames: int = 32
    fps: float | None = None
    min_pixels: int = 256 * 28 * 28
    max_pixels: int = 1605632

    def __post_init__(self) -> None:
        """Refuse settings that read no video; normalise an odd frame count to the even count it reads
        (frames go in pairs: 33 reads what 32 reads), so equal readings share one config key."""
        if self.max_num_frames < 2:
            raise ValueError(f"--frames {self.max_num_frames} (model arg max_num_frames): at least 2 frames are "
                             "read (Qwen2.5-VL groups frames in pairs): pass --frames 2 or more")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"--fps {self.fps}: a sampling rate must be > 0: pass e.g. --fps 1, or --frames instead")
        if self.min_pixels < 1 or self.max_pixels < 1:
            raise ValueError(f"--min-pixels {self.min_pixels} / --max-pixels {self.max_pixels}: pixel bounds must be "
                             "positive")
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"--min-pixels {self.min_pixels} is above --max-pixels {self.max_pixels}: pass a "
                             "minimum at or below the maximum")
        object.__setattr__(self, "max_num_frames", int(self.max_num_frames) // 2 * 2)


def sample_indices(total: int, num_frames: int | None = None, fps: float | None = None,
                   native_fps: float = 30.0, max_frames: int = 768) -> np.ndarray:
    """Uniformly spaced frame indices: ``num_frames`` of them, or one every ``1/fps`` s, capped at
    ``max_frames``; always an even count (Qwen2.5-VL groups frames in pairs), at least 2."""
    if num_frames is None:
        num_frames = int(round(total / native_fps * fps)) if fps else total
    count = max(2, min(num_frames, max_frames, total if total >= 2 else 2))
    count -= count % 2
    return np.linspace(0, max(total - 1, 0), count).round().astype(np.int64)


def read_video(path: str | Path, num_frames: int | None = None, fps: float | None = None,
               max_frames: int = 768) -> tuple[np.ndarray, float]:
    """Decode sampled frames of ``path``.

    Returns:
        frames (T, H, W, 3) uint8 RGB, and the duration in seconds.
    """
    path = Path(path)
    with _decoding(path):
        reader = _open_reader(path)
        total, native = len(reader), float(reader.get_avg_fps())
        frames = reader.get_batch(sample_indices(total, num_frames, fps, native, max_frames).tolist()).asnumpy()
    return frames, total / native if native > 0 else 0.0


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: ``frames`` decodable frames at ``fps``, each ``height`` x ``width``."""

    frames: int
    fps: float
    height: int
    width: int

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.frames / self.fps if self.fps > 0 else 0.0


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size of ``path`` (decodes its first frame to prove it decodes)."""
    path = Path(path)
    with _decoding(path):
        reader = _open_reader(path)
        height, width = reader[0].shape[:2]
        return VideoInfo(len(reader), float(reader.get_avg_fps()), int(height), int(width))


def iter_frames(path: str | Path, indices: Iterable[int], size: tuple[int, int] | None = None,
                chunk: int = 32) -> Iterator[np.ndarray]:
    """Stream the frames of ``path`` at ``indices`` (any order, repeats allowed), decoded ``chunk`` at a
    time so a long video never sits in memory.

    Yields:
        (H, W, 3) uint8 RGB frames; resized to ``size`` = (H, W) when given.
    """
    path = Path(path)
    height, width = size if size is not None else (-1, -1)
    with _decoding(path):
        reader = _open_reader(path, height=height, width=width)
    pending = iter(indices)
    while batch := [int(index) for index in islice(pending, chunk)]:
        with _decoding(path):
            frames = reader.get_batch(batch).asnumpy()
        yield from frames


def _open_reader(path: Path, height: int = -1, width: int = -1):  # -> decord.VideoReader
    """A decord reader of ``path`` (optionally resizing to ``height`` x ``width``); call inside ``_decoding``."""
    import decord

    if not path.is_file():
        raise VideoError(f"video {path} does not exist: check the dataset root (adaspark-eval data check)")
    reader = decord.VideoReader(str(path), num_threads=1, height=height, width=width)
    if len(reader) == 0:
        raise VideoError(f"video {path} has no frames: replace the file with a valid video")
    return reader


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turn decoder failures on ``path`` into a one-line ``VideoError``."""
    try:
        yield
    except VideoError:
        raise
    except Exception as error:  # decord raises its own DECORDError and RuntimeError types
        raise VideoError(f"video {path} cannot be decoded ({str(error).splitlines()[0][:120]}): "
                         "replace the file with a valid mp4") from None


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, crf: int = 18) -> int:
    """Write RGB uint8 frames (H, W, 3; even H and W) to an H.264 mp4, one frame at a time.

    Returns the number of frames written.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
            count += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return count
