"""Samples prepared ahead of the model: the inputs of the next requests (video decoded and resized, or
read from the frame cache, then the HF processor) are built in spawned worker processes
(``data.prefetch.Prefetcher``) while the model answers the current one.

A worker holds the processor and the frame cache in this module's ``_WORKER`` slot, set once by
``start_worker``; ``prepare`` builds one ``SampleJob``. With ``workers=0`` both run in the caller, which
is the serial path. The inputs do not depend on where they were built: the same function runs either way.

Fault injection (tests only): with ``ADASPARK_KILL_PREPARING`` naming a file whose text is a piece of a
video path, a worker preparing that video kills itself with SIGKILL, as a decoder crash or the OOM killer
would; when the file's second line is ``once``, the file is removed first, so the retry succeeds.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import parent_process
from pathlib import Path
from typing import Any

from adaspark_eval.data.frame_cache import FrameCache
from adaspark_eval.data.video import VideoSettings, probe_video
from adaspark_eval.lmms.inputs import PreparedInputs, prepare_inputs
from adaspark_eval.sparse.families import DEFAULT_FAMILY, Family

KILL_ENV = "ADASPARK_KILL_PREPARING"


@dataclass(frozen=True)
class SampleJob:
    """What a worker needs for one request: its lmms-eval chat ``messages`` (text and file paths), how
    videos are read, and ``frames_for``: a method's frame count for a file of N frames
    (``Method.frames_for``), or None for ``video``'s count."""

    messages: list[dict[str, Any]]
    video: VideoSettings
    frames_for: Callable[[int], int] | None = None


@dataclass
class _Slot:
    processor: Any = None
    cache: FrameCache | None = None
    family: Family = DEFAULT_FAMILY


_WORKER = _Slot()


def size_processor(processor: Any, video: VideoSettings) -> Any:
    """``processor`` with its image and video pixel bounds set to ``video``'s (as lmms-eval's stock class
    sets them)."""
    for sizes in (processor.image_processor, processor.video_processor):
        sizes.size = {"shortest_edge": video.min_pixels, "longest_edge": video.max_pixels}
    return processor


def start_worker(processor: Any, video: VideoSettings, cache: FrameCache | None,
                 family: Family = DEFAULT_FAMILY) -> None:
    """A worker's (or the inline caller's) one-time set-up: the processor (an object, or a model name to
    load it from, so that workers start before the model loads), the frame cache it uses and the model's
    family (how its stock class reads a request)."""
    if isinstance(processor, str):
        from adaspark_eval.models.loading import load_processor

        processor = load_processor(processor)
    _WORKER.processor, _WORKER.cache, _WORKER.family = size_processor(processor, video), cache, family


def prepare(job: SampleJob | None) -> PreparedInputs | None:
    """The inputs of one job; None for no job (a request already answered in the run folder).

    Raises:
        VideoError: a video is missing or does not decode.
    """
    if job is None:
        return None
    _maybe_die(job)
    video, file_frames = job.video, None
    if job.frames_for is not None and video.fps is None:
        path = _first_video(job.messages)
        if path is not None:
            file_frames = probe_video(path).frames
            video = dataclasses.replace(video, max_num_frames=job.frames_for(file_frames))
    return prepare_inputs(_WORKER.processor, job.messages, video, _WORKER.cache, file_frames, _WORKER.family)


def _first_video(messages: list[dict[str, Any]]) -> str | None:
    """The first video path of lmms-eval chat messages."""
    for message in messages:
        for part in message.get("content", []) if isinstance(message.get("content"), list) else []:
            if isinstance(part, dict) and part.get("type") == "video":
                return str(part.get("url") or part.get("video"))
    return None


def _maybe_die(job: SampleJob) -> None:
    marker = os.environ.get(KILL_ENV)
    if not marker or parent_process() is None:  # never the caller itself
        return
    try:
        target, *rest = Path(marker).read_text().splitlines()
    except (FileNotFoundError, ValueError):
        return
    if target and target in repr(job.messages):
        if rest and rest[0].strip() == "once":
            Path(marker).unlink(missing_ok=True)
        os.kill(os.getpid(), signal.SIGKILL)
