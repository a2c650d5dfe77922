"""Chat prompts with videos, as the Qwen-VL processors expect them."""

from __future__ import annotations

import numpy as np
from transformers import BatchFeature, Qwen2_5_VLProcessor
from transformers.video_utils import VideoMetadata


def video_prompt(processor: Qwen2_5_VLProcessor, videos: list[np.ndarray], question: str,
                 fps: float | None = None) -> BatchFeature:
    """Model inputs for one user turn: the videos (each (T, H, W, 3) uint8, frames already sampled), then
    the question. The processor's resize rules (min/max pixels) apply. ``fps``: the frames' rate, given to the
    processor as video metadata (Qwen3-VL writes each temporal group's time from it); None: no metadata."""
    content = [{"type": "video"} for _ in videos] + [{"type": "text", "text": question}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    metadata = None if fps is None else [
        VideoMetadata(total_num_frames=len(v), fps=fps, frames_indices=list(range(len(v)))) for v in videos]
    extra = {} if metadata is None else {"video_metadata": metadata}
    return processor(text=[text], videos=list(videos), return_tensors="pt", do_sample_frames=False, **extra)


VIDEO_FPS = 2.0
"""Frame rate given to a processor that writes timestamps (Qwen3-VL) for frames without metadata, as
qwen-vl-utils samples videos."""


def family_video_prompt(processor: Qwen2_5_VLProcessor, videos: list[np.ndarray], question: str,
                        timestamps: bool) -> BatchFeature:
    """``video_prompt`` for a model whose processor writes timestamps (``Family.timestamps``, Qwen3-VL) or not.
    A timestamping processor gets the frames at ``VIDEO_FPS``, and its pixel cap, a budget for all frames of a
    video together there, is read per frame as for the other families (scaled by the frame count for the call)."""
    if not timestamps:
        return video_prompt(processor, videos, question)
    size = processor.video_processor.size
    processor.video_processor.size = {"shortest_edge": size["shortest_edge"],
                                      "longest_edge": size["longest_edge"] * max(len(v) for v in videos)}
    try:
        return video_prompt(processor, videos, question, fps=VIDEO_FPS)
    finally:
        processor.video_processor.size = size
