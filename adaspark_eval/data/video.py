"""Video files: decode sampled frames (decord) and write frames as H.264 mp4 (PyAV), streaming."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """A video is missing or cannot be decoded; the message names the file and the fix."""


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
    import decord

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video {path} does not exist: check the dataset root (adaspark-eval data check)")
    try:
        reader = decord.VideoReader(str(path), num_threads=1)
        total, native = len(reader), float(reader.get_avg_fps())
        if total == 0:
            raise VideoError(f"video {path} has no frames: replace the file with a valid video")
        frames = reader.get_batch(sample_indices(total, num_frames, fps, native, max_frames).tolist()).asnumpy()
    except VideoError:
        raise
    except Exception as error:  # decord raises its own DECORDError and RuntimeError types
        raise VideoError(f"video {path} cannot be decoded ({str(error).splitlines()[0][:120]}): "
                         "replace the file with a valid mp4") from None
    return frames, total / native if native > 0 else 0.0


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
