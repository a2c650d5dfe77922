"""``lmms.inputs`` with a frame cache: the inputs are bit-identical with and without it, cold and warm,
and after a damaged entry is rebuilt; a hit skips decoding; a changed file or other settings miss."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from adaspark_eval.data.frame_cache import FrameCache
from adaspark_eval.data.video import VideoError, VideoSettings, write_video
from adaspark_eval.lmms.inputs import build_inputs, prepare_inputs
from adaspark_eval.models.tiny import build_processor

SETTINGS = VideoSettings(max_num_frames=4, min_pixels=3136, max_pixels=15680)


@pytest.fixture(scope="module")
def processor():
    return build_processor()


def noise_video(path: Path, seed: int, frames: int = 6) -> Path:
    write_video(path, np.random.RandomState(seed).randint(0, 256, (frames, 112, 140, 3), dtype=np.uint8), 4.0)
    return path


def messages(video: Path) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "video", "url": str(video)},
                                         {"type": "text", "text": "What is shown?"}]}]


def assert_same(a, b) -> None:
    """Two (BatchFeature, prompt) pairs are equal: every tensor bit for bit, and the prompt."""
    (inputs_a, prompt_a), (inputs_b, prompt_b) = a, b
    assert prompt_a == prompt_b and sorted(inputs_a.keys()) == sorted(inputs_b.keys())
    for name in inputs_a:
        x, y = inputs_a[name], inputs_b[name]
        if isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype and torch.equal(x, y), name
        else:
            assert x == y, name


@pytest.mark.parametrize("settings", [SETTINGS, VideoSettings(fps=2.0, min_pixels=3136, max_pixels=15680)],
                         ids=["frames", "fps"])
def test_inputs_equal_without_cache_cold_and_warm(processor, tmp_path: Path, settings: VideoSettings) -> None:
    video = noise_video(tmp_path / "v.mp4", seed=0)
    cache = FrameCache(tmp_path / "cache")
    plain = build_inputs(processor, messages(video), settings)
    cold = prepare_inputs(processor, messages(video), settings, cache)
    warm = prepare_inputs(processor, messages(video), settings, cache)
    assert (cold.cache_hit, warm.cache_hit) == (False, True) and cache.info().entries == 1
    assert cold.timings.decode_s > 0 and warm.timings.decode_s == 0 and warm.timings.processor_s > 0
    assert_same(plain, (cold.inputs, cold.prompt))
    assert_same(plain, (warm.inputs, warm.prompt))
    assert_same(plain, build_inputs(processor, messages(video), settings, cache))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_entry_is_rebuilt_with_equal_inputs(processor, tmp_path: Path, damage: str) -> None:
    video = noise_video(tmp_path / "v.mp4", seed=1)
    cache = FrameCache(tmp_path / "cache")
    plain = build_inputs(processor, messages(video), SETTINGS)
    prepare_inputs(processor, messages(video), SETTINGS, cache)
    (entry,) = (tmp_path / "cache").glob("*.frames")
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-100] ^= 0x01  # one bit of the last frame
    entry.write_bytes(bytes(data))
    rebuilt = prepare_inputs(processor, messages(video), SETTINGS, cache)
    warm = prepare_inputs(processor, messages(video), SETTINGS, cache)
    assert (rebuilt.cache_hit, warm.cache_hit) == (False, True)
    assert_same(plain, (rebuilt.inputs, rebuilt.prompt))
    assert_same(plain, (warm.inputs, warm.prompt))


def test_changed_file_or_settings_miss(processor, tmp_path: Path) -> None:
    video = noise_video(tmp_path / "v.mp4", seed=2)
    cache = FrameCache(tmp_path / "cache")
    first = prepare_inputs(processor, messages(video), SETTINGS, cache)
    assert not prepare_inputs(processor, messages(video), VideoSettings(max_num_frames=2, min_pixels=3136,
                                                                        max_pixels=15680), cache).cache_hit
    mtime = video.stat().st_mtime_ns
    noise_video(tmp_path / "other.mp4", seed=3).replace(video)
    os.utime(video, ns=(mtime, mtime))
    changed = prepare_inputs(processor, messages(video), SETTINGS, cache)
    assert not changed.cache_hit
    assert not torch.equal(changed.inputs["pixel_values_videos"], first.inputs["pixel_values_videos"])
    assert_same(build_inputs(processor, messages(video), SETTINGS), (changed.inputs, changed.prompt))
    assert cache.info().entries == 3


def test_missing_or_broken_video_is_one_line_video_error(processor, tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    with pytest.raises(VideoError, match="does not exist") as missing:
        prepare_inputs(processor, messages(tmp_path / "missing.mp4"), SETTINGS, cache)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(VideoError, match="cannot be decoded") as undecodable:
        prepare_inputs(processor, messages(broken), SETTINGS, cache)
    for error in (missing.value, undecodable.value):
        assert "\n" not in str(error)
    assert cache.info().entries == 0
