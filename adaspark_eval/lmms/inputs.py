"""Qwen2.5-VL inputs of one lmms-eval chat request, read the way lmms-eval's stock ``qwen2_5_vl`` (chat)
class reads them: the frame count is ``min(max_num_frames, frames in the file)`` floored to even (or
``fps`` when given), frames are decoded and resized by ``qwen_vl_utils`` (decord) within
``[min_pixels, max_pixels]``, and the processor gets the frames with their metadata."""

from __future__ import annotations

import logging
from typing import Any

from lmms_eval.protocol import ChatMessages
from qwen_vl_utils import process_vision_info
from transformers import BatchFeature, Qwen2_5_VLProcessor

from adaspark_eval.data.video import VideoError, VideoSettings, probe_video


class _PerFrameCapNotice(logging.Filter):
    """Drops qwen_vl_utils' "The given max_pixels[...] exceeds limit[...]" warning: it reports the per-frame
    cap every long video gets (documented under ``data.video.VideoSettings``), once per sample."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "exceeds limit" not in record.getMessage()


logging.getLogger("qwen_vl_utils.vision_process").addFilter(_PerFrameCapNotice())


def build_inputs(processor: Qwen2_5_VLProcessor, messages: list[dict[str, Any]],
                 settings: VideoSettings) -> tuple[BatchFeature, str]:
    """Model inputs (batch of 1, on CPU) and the chat-templated prompt for one request's messages.

    Raises:
        VideoError: a video is missing or does not decode (one line, naming the file).
    """
    chat = ChatMessages(messages=messages)
    _, videos, _ = chat.extract_media()
    video_kwargs: dict[str, Any] = {"max_pixels": settings.max_pixels, "min_pixels": settings.min_pixels}
    if settings.fps is not None:
        video_kwargs["fps"] = settings.fps
    elif videos:
        frames = probe_video(videos[0]).frames
        video_kwargs["nframes"] = max(2, min(settings.max_num_frames, frames) // 2 * 2)
    hf_messages = [chat.to_hf_messages(video_kwargs=video_kwargs)]
    texts = processor.apply_chat_template(hf_messages, tokenize=False, add_generation_prompt=True)
    try:
        images, video_inputs, _ = process_vision_info(hf_messages, return_video_kwargs=True,
                                                      return_video_metadata=True)
    except Exception as error:  # qwen_vl_utils tries decord, then torchvision: either may raise anything
        raise VideoError(f"video {videos[0] if videos else '?'} cannot be decoded "
                         f"({str(error).splitlines()[0][:120] if str(error) else type(error).__name__}): "
                         "replace the file with a valid mp4") from None
    metadata = None
    if video_inputs is not None:
        video_inputs, metadata = (list(x) for x in zip(*video_inputs))
    inputs = processor(text=texts, images=images, videos=video_inputs, video_metadata=metadata, padding=True,
                       padding_side="right", return_tensors="pt")
    return inputs, texts[0]
