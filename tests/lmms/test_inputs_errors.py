"""A video that cannot be read is reported with its real cause: a 1-frame file says so (the stock lmms-eval
class cannot read it either: frames go in pairs), and another decoding failure names the first reader's own
message, not the torchvision fallback that the pinned torchvision no longer has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adaspark_eval.data.video import VideoError, VideoSettings, write_video
from adaspark_eval.lmms.inputs import prepare_inputs

SETTINGS = VideoSettings(min_pixels=3136, max_pixels=15680)


def _messages(video: Path) -> list[dict]:
    return [{"role": "user", "content": [{"type": "video", "url": str(video)}, {"type": "text", "text": "Q?"}]}]


def test_a_one_frame_video_is_an_error_naming_the_frame_count(tiny, tmp_path: Path) -> None:
    video = tmp_path / "one.mp4"
    write_video(video, [np.full((64, 64, 3), 90, np.uint8)], fps=1)
    with pytest.raises(VideoError, match=r"one\.mp4 has 1 frame: at least 2 are needed"):
        prepare_inputs(tiny[1], _messages(video), SETTINGS)


def test_an_undecodable_video_names_the_readers_own_message(tiny, tmp_path: Path) -> None:
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\0" * 4096)
    with pytest.raises(VideoError) as caught:
        prepare_inputs(tiny[1], _messages(video), SETTINGS)
    message = str(caught.value)
    assert "broken.mp4" in message and "torchvision" not in message and "\n" not in message
