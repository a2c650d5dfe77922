"""Model inputs of one lmms-eval chat request, read the way lmms-eval's stock chat class of the model's family
reads them (``qwen2_5_vl``, ``qwen3_vl``: ``Family.lmms_class``): the frame count is ``min(max_num_frames,
frames in the file)`` floored to even (or ``fps`` when given), frames are decoded and resized by
``qwen_vl_utils`` (decord) within ``[min_pixels, max_pixels]`` to multiples of twice the family's ViT patch,
and the processor gets the frames with their metadata. Qwen3-VL's class adds a system turn and has the
processor keep the frames as they are (``do_resize=False``), its timestamps written from the metadata.

With a ``data.frame_cache.FrameCache`` the decoded, resized frames of a single-video request are kept
on disk: a later request for the same file and settings skips decoding. The inputs are bit-identical
with and without the cache, cold or warm."""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from lmms_eval.protocol import ChatMessages
from qwen_vl_utils import process_vision_info
from qwen_vl_utils.vision_process import MODEL_SEQ_LEN, extract_vision_info, fetch_video, get_video_reader_backend
from transformers import BatchFeature, Qwen2_5_VLProcessor

from adaspark_eval.data.frame_cache import CachedFrames, FrameCache
from adaspark_eval.data.video import VideoError, VideoSettings, probe_video
from adaspark_eval.sparse.families import DEFAULT_FAMILY, Family

IMAGE_PATCH_SIZE = DEFAULT_FAMILY.image_patch
"""Qwen2.5-VL's ViT patch: qwen_vl_utils' default, which the frame sizes are multiples of (x2); other families
read their own (``Family.image_patch``)."""


class _PerFrameCapNotice(logging.Filter):
    """Drops qwen_vl_utils' "The given max_pixels[...] exceeds limit[...]" warning: it reports the per-frame
    cap every long video gets (documented under ``data.video.VideoSettings``), once per sample."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "exceeds limit" not in record.getMessage()


logging.getLogger("qwen_vl_utils.vision_process").addFilter(_PerFrameCapNotice())


@dataclass(frozen=True)
class StageTimings:
    """Seconds one request spent per stage.

    Attributes:
        decode_s: probing, reading and resizing the frames (0 on a cache hit).
        cache_s: the video's cache identity, the lookup and load of an entry, and storing a new one.
        processor_s: the HF processor call (normalising, patching, tokenising).
    """

    decode_s: float = 0.0
    cache_s: float = 0.0
    processor_s: float = 0.0


@dataclass(frozen=True)
class PreparedInputs:
    """Model inputs (batch of 1, on CPU), the chat-templated prompt, per-stage seconds, and whether the
    frames came from the frame cache."""

    inputs: BatchFeature
    prompt: str
    timings: StageTimings
    cache_hit: bool
    file_frames: int | None = None  # frames in the video file, when the caller probed it (``prepare``)


def prepare_inputs(processor: Qwen2_5_VLProcessor, messages: list[dict[str, Any]], settings: VideoSettings,
                   cache: FrameCache | None = None, file_frames: int | None = None,
                   family: Family = DEFAULT_FAMILY) -> PreparedInputs:
    """Model inputs and prompt for one request's messages, with the frames of a single-video request
    (no images) taken from / stored into ``cache`` when given; ``file_frames``: the video's frame count
    when the caller already probed it; ``family``: the model's (``sparse.families``).

    Raises:
        VideoError: a video is missing or does not decode (one line, naming the file).
    """
    if family.system_prompt is not None:  # as the family's stock class inserts it
        messages = [{"role": "system", "content": [{"type": "text", "text": family.system_prompt}]}, *messages]
    chat = ChatMessages(messages=messages)
    images, videos, _ = chat.extract_media()
    video_kwargs: dict[str, Any] = {"max_pixels": settings.max_pixels, "min_pixels": settings.min_pixels}
    if settings.fps is not None:
        video_kwargs["fps"] = settings.fps
    decode_s = cache_s = 0.0
    key: str | None = None
    entry: CachedFrames | None = None
    if cache is not None and len(videos) == 1 and not images:
        start = time.perf_counter()
        key = _cache_key(cache, chat, videos[0], settings, video_kwargs, family.image_patch)
        entry = cache.get(key) if key is not None else None
        cache_s += time.perf_counter() - start
    if settings.fps is None and videos:
        if entry is not None:
            video_kwargs["nframes"] = int(entry.frames.shape[0])
        else:
            start = time.perf_counter()
            frames = file_frames if file_frames is not None else probe_video(videos[0]).frames
            decode_s += time.perf_counter() - start
            video_kwargs["nframes"] = max(2, min(settings.max_num_frames, frames) // 2 * 2)
    hf_messages = [chat.to_hf_messages(video_kwargs=video_kwargs)]
    texts = processor.apply_chat_template(hf_messages, tokenize=False, add_generation_prompt=True)
    metadata = None
    if entry is not None:
        image_inputs, video_inputs, metadata = None, [entry.frames], [entry.metadata]
    elif cache is not None and key is not None:
        start = time.perf_counter()
        try:
            with _reader_failures() as fallbacks:
                (video, video_metadata), sample_fps = fetch_video(
                    extract_vision_info(hf_messages)[0], image_patch_size=family.image_patch,
                    return_video_sample_fps=True, return_video_metadata=True)
        except Exception as error:  # qwen_vl_utils tries decord, then torchvision: either may raise anything
            raise _decode_error(videos, error, fallbacks) from None
        image_inputs, video_inputs, metadata = None, [video], [video_metadata]
        decode_s += time.perf_counter() - start
        start = time.perf_counter()
        cache.put(key, video, video_metadata, sample_fps)
        cache_s += time.perf_counter() - start
    else:
        start = time.perf_counter()
        try:
            with _reader_failures() as fallbacks:
                image_inputs, video_inputs, _ = process_vision_info(hf_messages, return_video_kwargs=True,
                                                                    return_video_metadata=True,
                                                                    image_patch_size=family.image_patch)
        except Exception as error:  # qwen_vl_utils tries decord, then torchvision: either may raise anything
            raise _decode_error(videos, error, fallbacks) from None
        decode_s += time.perf_counter() - start
        if video_inputs is not None:
            video_inputs, metadata = (list(x) for x in zip(*video_inputs))
    start = time.perf_counter()
    if family.processor_resizes:
        inputs = processor(text=texts, images=image_inputs, videos=video_inputs, video_metadata=metadata,
                           padding=True, padding_side="right", return_tensors="pt")
    else:  # the frames as qwen_vl_utils resized them, with the stock class's video kwargs
        inputs = processor(text=texts, images=image_inputs, videos=video_inputs, video_metadata=metadata,
                           **video_kwargs, do_sample_frames=False, do_resize=False, return_tensors="pt")
    processor_s = time.perf_counter() - start
    return PreparedInputs(inputs, texts[0], StageTimings(decode_s, cache_s, processor_s), entry is not None,
                          file_frames)


def build_inputs(processor: Qwen2_5_VLProcessor, messages: list[dict[str, Any]], settings: VideoSettings,
                 cache: FrameCache | None = None) -> tuple[BatchFeature, str]:
    """Model inputs (batch of 1, on CPU) and the chat-templated prompt for one request's messages
    (``prepare_inputs`` without the timings).

    Raises:
        VideoError: a video is missing or does not decode (one line, naming the file).
    """
    prepared = prepare_inputs(processor, messages, settings, cache)
    return prepared.inputs, prepared.prompt


def frame_cache_settings(settings: VideoSettings, element: dict[str, Any],
                         image_patch: int = IMAGE_PATCH_SIZE) -> dict[str, Any]:
    """Everything besides the file that determines the frames qwen_vl_utils reads for ``element`` (a
    video item of the HF messages, before its frame count is set) under ``settings``: the sampling
    request, the decoder backend, the total-pixel budget and the versions of the code that resizes."""
    request = {k: v for k, v in element.items() if k not in ("type", "video", "nframes")}
    return {
        "request": request,
        "max_num_frames": settings.max_num_frames if settings.fps is None else None,
        "decoder": get_video_reader_backend(),
        "image_patch_size": image_patch,
        "model_seq_len": MODEL_SEQ_LEN,
        **_code_versions(),
    }


@functools.cache
def _code_versions() -> dict[str, str]:
    """Versions of the libraries that decode and resize frames (a new one may resize differently)."""
    return {"qwen_vl_utils": importlib.metadata.version("qwen-vl-utils"), "torch": torch.__version__,
            "torchvision": torchvision.__version__}


def _cache_key(cache: FrameCache, chat: ChatMessages, video: str, settings: VideoSettings,
               video_kwargs: dict[str, Any], image_patch: int) -> str | None:
    """The cache key of the request's one video, or None when the file cannot be read (the uncached
    path then raises the usual VideoError)."""
    element = extract_vision_info([chat.to_hf_messages(video_kwargs=video_kwargs)])[0]
    try:
        return cache.key(video, frame_cache_settings(settings, element, image_patch))
    except OSError:
        return None


def _decode_error(videos: list[str], error: Exception, fallbacks: list[str]) -> VideoError:
    """The one-line VideoError of a qwen_vl_utils decoding failure, naming its real cause: a video of
    fewer than 2 frames (which neither this harness nor lmms-eval's stock class can read), else the first
    reader's own message (``fallbacks``: what qwen_vl_utils logged before trying its torchvision fallback,
    which the pinned torchvision no longer has), else the error itself."""
    video = videos[0] if videos else "?"
    try:
        frames = probe_video(video).frames if videos else None
    except VideoError as unreadable:
        return unreadable
    if frames is not None and frames < 2:
        return VideoError(f"video {video} has {frames} frame{'s' if frames != 1 else ''}: at least 2 are needed "
                          "(Qwen2.5-VL reads frames in pairs; lmms-eval's stock class cannot read it either): "
                          "replace the file with a longer one or drop its questions")
    cause = fallbacks[0] if fallbacks else (str(error) or type(error).__name__)
    return VideoError(f"video {video} cannot be decoded ({cause.splitlines()[0][:160]}): replace the file with a "
                      "valid mp4")


class _ReaderFailures(logging.Handler):
    """Collects qwen_vl_utils' "video_reader_backend X error, use torchvision as default, msg: ..." lines
    during one read: the message of the reader that really failed."""

    PATTERN = re.compile(r"video_reader_backend (\w+) error, use torchvision as default, msg: (.*)", re.S)

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.causes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = self.PATTERN.search(record.getMessage())
        if match:
            self.causes.append(f"{match.group(1)}: {match.group(2)}")


@contextmanager
def _reader_failures() -> Iterator[list[str]]:
    handler = _ReaderFailures()
    logger = logging.getLogger("qwen_vl_utils.vision_process")
    logger.addHandler(handler)
    try:
        yield handler.causes
    finally:
        logger.removeHandler(handler)
