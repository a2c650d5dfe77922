"""The frame cache: lossless round trips, damaged entries rebuilt, file identity, LRU eviction."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

from adaspark_eval.data.frame_cache import (DEFAULT_MAX_BYTES, ENTRY_SUFFIX, FrameCache, default_folder,
                                            file_identity, gb_to_bytes)

METADATA = {"fps": 29.97, "frames_indices": [0, 3, 5, 9], "total_num_frames": 10, "video_backend": "decord"}


def frames(seed: int, shape: tuple[int, ...] = (4, 3, 8, 10)) -> torch.Tensor:
    """Integral float32 frames in [0, 255], as qwen_vl_utils' resize of uint8 frames gives them."""
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed)).float()


def a_video(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_round_trip_is_bit_identical_and_integral_frames_are_stored_as_uint8(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    video = a_video(tmp_path / "v.mp4", b"x" * 100)
    key = cache.key(video, {"nframes": 4})
    assert cache.get(key) is None and not (tmp_path / "cache").exists()
    stored = frames(0)
    assert cache.put(key, stored, METADATA, 1.5)
    entry = cache.get(key)
    assert entry is not None and entry.frames.dtype == torch.float32 and torch.equal(entry.frames, stored)
    assert entry.metadata == METADATA and entry.sample_fps == 1.5
    assert cache.info().bytes < stored.numel() * 2  # one byte per value, not four
    tensor_meta = {**METADATA, "frames_indices": torch.tensor([0, 3, 5, 9])}
    fractional = stored / 3
    assert cache.put(key, fractional, tensor_meta, 1.5)
    entry = cache.get(key)
    assert torch.equal(entry.frames, fractional) and entry.frames.dtype == torch.float32
    assert torch.equal(entry.metadata["frames_indices"], tensor_meta["frames_indices"])
    assert cache.info().entries == 1


def test_values_it_cannot_keep_exactly_are_not_cached(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path)
    key = cache.key(a_video(tmp_path / "v.mp4", b"v"), {})
    assert not cache.put(key, frames(0).to(torch.bfloat16), METADATA, 1.0)
    assert not cache.put(key, frames(0), {**METADATA, "fps": object()}, 1.0)
    negative_zero = frames(0)
    negative_zero[0, 0, 0, 0] = -0.0
    assert cache.put(key, negative_zero, METADATA, 1.0)  # stored as float32: the sign bit survives
    assert torch.signbit(cache.get(key).frames[0, 0, 0, 0])


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_entry_is_deleted_and_reported_as_a_miss(tmp_path: Path, damage: str, caplog) -> None:
    cache = FrameCache(tmp_path)
    key = cache.key(a_video(tmp_path / "v.mp4", b"v"), {})
    cache.put(key, frames(1), METADATA, 2.0)
    path = cache.path(key)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 7]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x10
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="adaspark_eval.data.frame_cache"):
        assert cache.get(key) is None
    assert len(caplog.records) == 1 and "damaged" in caplog.records[0].getMessage()
    assert not path.exists()
    assert cache.put(key, frames(1), METADATA, 2.0) and torch.equal(cache.get(key).frames, frames(1))


def test_identity_follows_the_content_not_just_size_and_time(tmp_path: Path) -> None:
    video = a_video(tmp_path / "v.mp4", bytes(range(256)) * 20)
    before = file_identity(video)
    stat = video.stat()
    video.write_bytes(bytes(reversed(range(256))) * 20)  # same size, other content
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
    after = file_identity(video)
    assert (after.size, after.mtime_ns, after.path) == (before.size, before.mtime_ns, before.path)
    assert after.head_tail != before.head_tail
    cache = FrameCache(tmp_path / "cache")
    assert cache.key(video, {"nframes": 4}) != cache.key(video, {"nframes": 2})
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert file_identity(video).mtime_ns != after.mtime_ns
    # the tail is hashed too: a change past the first MiB changes the identity
    big = a_video(tmp_path / "big.mp4", b"\0" * (3 << 20))
    first = file_identity(big)
    with open(big, "r+b") as handle:
        handle.seek((3 << 20) - 1)
        handle.write(b"\1")
    os.utime(big, ns=(first.mtime_ns, first.mtime_ns))
    assert file_identity(big).head_tail != first.head_tail
    # the same file reached through a relative path or a symlink has one identity
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    assert file_identity(link) == file_identity(video)


def test_eviction_keeps_the_folder_under_its_bound_and_drops_the_least_recently_used(tmp_path: Path) -> None:
    probe = FrameCache(tmp_path / "probe")
    probe_key = probe.key(a_video(tmp_path / "v0.mp4", b"0"), {})
    probe.put(probe_key, frames(0), METADATA, 1.0)
    entry_bytes = probe.info().bytes
    cache = FrameCache(tmp_path / "cache", max_bytes=3 * entry_bytes + entry_bytes // 2)
    keys = [cache.key(a_video(tmp_path / f"v{i}.mp4", bytes([i])), {}) for i in range(5)]
    for key in keys[:3]:
        assert cache.put(key, frames(0), METADATA, 1.0)
    assert cache.get(keys[0]) is not None  # a hit: keys[0] is now the most recently used
    assert cache.put(keys[3], frames(0), METADATA, 1.0)
    assert [cache.get(key) is not None for key in keys[:4]] == [True, False, True, True]  # keys[1] evicted
    assert cache.get(keys[2]) is not None  # recency now: keys[0], keys[3], keys[2]
    assert cache.put(keys[4], frames(0), METADATA, 1.0)
    info = cache.info()
    assert info.entries == 3 and info.bytes <= cache.max_bytes
    assert [cache.get(key) is not None for key in keys] == [False, False, True, True, True]
    assert not FrameCache(tmp_path / "tiny", max_bytes=entry_bytes - 1).put(keys[0], frames(0), METADATA, 1.0)


def test_an_entry_vanishing_is_a_miss_and_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path)
    key = cache.key(a_video(tmp_path / "v.mp4", b"v"), {})
    cache.put(key, frames(0), METADATA, 1.0)
    cache.path(key).unlink()
    assert cache.get(key) is None
    stale = tmp_path / f".tmp-{key}-1-dead"
    stale.write_bytes(b"partial")
    os.utime(stale, (1, 1))
    fresh = tmp_path / f".tmp-{key}-2-live"
    fresh.write_bytes(b"in flight")
    cache.evict()
    assert not stale.exists() and fresh.exists()


def test_info_and_clear_touch_only_cache_files(tmp_path: Path) -> None:
    cache = FrameCache(tmp_path / "cache")
    assert cache.info().entries == 0 and cache.clear() == 0
    for i in range(2):
        cache.put(cache.key(a_video(tmp_path / f"v{i}.mp4", bytes([i])), {}), frames(i), METADATA, 1.0)
    other = tmp_path / "cache" / "notes.txt"
    other.write_text("keep me")
    info = cache.info()
    assert (info.entries, info.folder) == (2, tmp_path / "cache")
    assert info.bytes == sum(p.stat().st_size for p in (tmp_path / "cache").glob(f"*{ENTRY_SUFFIX}"))
    assert cache.clear() == 2 and cache.info().entries == 0 and other.read_text() == "keep me"


def test_defaults_and_validation(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_folder() == tmp_path / "adaspark-eval" / "frames"
    assert FrameCache().folder == default_folder() and FrameCache().max_bytes == DEFAULT_MAX_BYTES == 50 * 10**9
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_folder() == Path.home() / ".cache" / "adaspark-eval" / "frames"
    assert gb_to_bytes(1.5) == 1_500_000_000
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="--frame-cache-max-gb"):
            gb_to_bytes(bad)
    with pytest.raises(ValueError, match="positive"):
        FrameCache(tmp_path, max_bytes=0)
    with pytest.raises(ValueError, match="hex"):
        FrameCache(tmp_path).path("../escape")
    with pytest.raises(FileNotFoundError):
        FrameCache(tmp_path).key(tmp_path / "missing.mp4", {})


def test_concurrent_readers_writers_and_evictors_on_one_folder(tmp_path: Path) -> None:
    """Workers share a folder that holds about 3 of 6 entries: entries are replaced and evicted under
    each other's reads, and every read is either a miss or the exact frames."""
    from concurrent.futures import ThreadPoolExecutor

    videos = [a_video(tmp_path / f"v{i}.mp4", bytes([i]) * 64) for i in range(6)]
    probe = FrameCache(tmp_path / "probe")
    probe.put(probe.key(videos[0], {}), frames(0), METADATA, 1.0)
    bound = 3 * probe.info().bytes + 100

    def work(worker: int) -> int:
        cache = FrameCache(tmp_path / "shared", max_bytes=bound)  # one instance per worker, as per process
        hits = 0
        for step in range(30):
            index = (worker * 7 + step * 5) % len(videos)
            key = cache.key(videos[index], {})
            entry = cache.get(key)
            if entry is None:
                cache.put(key, frames(index), METADATA, 1.0)
            else:
                assert torch.equal(entry.frames, frames(index)) and entry.metadata == METADATA
                hits += 1
        return hits

    with ThreadPoolExecutor(4) as pool:
        hits = list(pool.map(work, range(4)))
    assert sum(hits) > 0
    info = FrameCache(tmp_path / "shared").info()
    assert 0 < info.entries <= 3 and info.bytes <= bound
    assert not list((tmp_path / "shared").glob(".tmp-*"))
