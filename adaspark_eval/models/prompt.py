"""Chat prompts with videos, as Qwen2.5-VL's processor expects them."""

from __future__ import annotations

import numpy as np
from transformers import BatchFeature, Qwen2_5_VLProcessor


def video_prompt(processor: Qwen2_5_VLProcessor, videos: list[np.ndarray], question: str) -> BatchFeature:
    """Model inputs for one user turn: the videos (each (T, H, W, 3) uint8, frames already sampled), then
    the question. The processor's resize rules (min/max pixels) apply."""
    content = [{"type": "video"} for _ in videos] + [{"type": "text", "text": question}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    return processor(text=[text], videos=list(videos), return_tensors="pt", do_sample_frames=False)
