"""A persistent, size-bounded cache of decoded video frames, shared by every process on a machine.

An evaluation at real scale is bound by video decoding (seconds of CPU per question against sub-second
GPU work), and the same video is decoded again for each of its questions and for each config of a
sweep. ``FrameCache`` keeps the sampled, *resized* frames of a video on disk so a second request for the
same frames skips the decoder.

Contracts:
    * Lossless: a hit returns a tensor bit-identical to the one stored (same dtype, shape and values);
      frames that are integral in [0, 255] are stored as uint8, anything else in its own dtype.
    * Keyed by what determines the frames: the file's identity (resolved path, size, mtime_ns and a
      blake2b digest of its first and last MiB, see ``file_identity``), the caller's sampling settings
      (a JSON mapping: frame count or fps, pixel bounds, decoder backend, library versions, ...) and
      ``FORMAT_VERSION``.
    * Never trusted blindly: each entry carries a blake2b checksum verified on every read; a truncated
      or corrupt entry is logged (one warning line), deleted and reported as a miss.
    * Bounded: the folder holds at most ``max_bytes`` of entries; least recently used entries (a hit
      refreshes an entry's mtime) are evicted to make room before a write and again after it.
    * Safe for several processes on one folder: entries appear atomically (temporary file, fsync,
      ``os.replace``) and an entry vanishing under a reader or an evictor is a miss, not an error.
      Two processes missing the same key both decode and both write; the last replace wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when the entry layout or the meaning of a key changes: old entries then stop matching."""
DEFAULT_MAX_GB = 50.0
"""Default bound on the folder, in GB (10**9 bytes)."""
DEFAULT_MAX_BYTES = int(DEFAULT_MAX_GB * 10**9)
IDENTITY_CHUNK = 1 << 20
"""Bytes hashed at each end of a video file for its identity."""
ENTRY_SUFFIX = ".frames"
TEMP_PREFIX = ".tmp-"
STALE_TEMP_S = 3600.0
"""A temporary file older than this is left over from a crashed writer and removed by eviction."""

_MAGIC = b"ADSFRMC\n"
_DIGEST_SIZE = 32
_LENGTH_BYTES = 8
# torch dtypes an entry may hold, with their little-endian numpy layout
_LAYOUTS: dict[torch.dtype, str] = {torch.uint8: "|u1", torch.float16: "<f2", torch.float32: "<f4",
                                    torch.float64: "<f8", torch.int32: "<i4", torch.int64: "<i8"}
_DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in _LAYOUTS}


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/adaspark-eval/frames``, or ``~/.cache/adaspark-eval/frames`` without it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "adaspark-eval" / "frames"


def gb_to_bytes(gb: float) -> int:
    """A size in GB (10**9 bytes) as whole bytes; raises ValueError unless positive and finite."""
    if not (isinstance(gb, (int, float)) and math.isfinite(gb) and gb > 0):
        raise ValueError(f"frame cache size must be a positive number of GB, got {gb!r}: "
                         f"pass e.g. --frame-cache-max-gb {DEFAULT_MAX_GB:g}")
    return max(1, int(gb * 10**9))


@dataclass(frozen=True)
class FileIdentity:
    """What tells one version of a file from another without reading all of it."""

    path: str
    size: int
    mtime_ns: int
    head_tail: str  # blake2b hex of the first and last IDENTITY_CHUNK bytes


def file_identity(path: str | Path) -> FileIdentity:
    """The identity of ``path`` (resolved). Raises OSError (FileNotFoundError) when it cannot be read."""
    resolved = Path(path).resolve(strict=True)
    with open(resolved, "rb") as handle:
        stat = os.fstat(handle.fileno())
        digest = hashlib.blake2b(digest_size=16)
        digest.update(handle.read(IDENTITY_CHUNK))
        if stat.st_size > IDENTITY_CHUNK:
            handle.seek(max(IDENTITY_CHUNK, stat.st_size - IDENTITY_CHUNK))
            digest.update(handle.read(IDENTITY_CHUNK))
    return FileIdentity(str(resolved), stat.st_size, stat.st_mtime_ns, digest.hexdigest())


@dataclass(frozen=True)
class CachedFrames:
    """One entry: ``frames`` (as stored: e.g. (T, C, H, W) float32), the decoder's ``metadata`` (JSON
    values, lists and dicts, or 1-D integer tensors) and the sampling rate ``sample_fps``."""

    frames: torch.Tensor
    metadata: dict[str, Any]
    sample_fps: float


@dataclass(frozen=True)
class CacheInfo:
    """``entries`` complete entries holding ``bytes`` bytes in ``folder``."""

    folder: Path
    entries: int
    bytes: int


class CacheEntryError(ValueError):
    """An entry on disk is truncated, corrupt or of another format."""


class FrameCache:
    """Decoded frames on disk under ``folder`` (created on the first write), at most ``max_bytes`` of them.

    Use ``key(video, settings)`` then ``get(key)``; on a miss decode and ``put(key, ...)``.
    """

    def __init__(self, folder: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"frame cache max_bytes must be a positive int, got {max_bytes!r}: "
                             "pass a positive --frame-cache-max-gb")
        self.folder = Path(folder).expanduser() if folder is not None else default_folder()
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"FrameCache({str(self.folder)!r}, max_bytes={self.max_bytes})"

    # -- keys -------------------------------------------------------------------------------------------

    def key(self, video: str | Path, settings: Mapping[str, Any]) -> str:
        """The entry name of ``video``'s frames sampled by ``settings`` (a JSON-serialisable mapping of
        everything besides the file that determines the frames).

        Raises:
            OSError: the video cannot be read.
            TypeError: ``settings`` is not JSON-serialisable.
        """
        identity = file_identity(video)
        text = json.dumps({"format": FORMAT_VERSION, "file": identity.__dict__, "settings": dict(settings)},
                          sort_keys=True, allow_nan=False)
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry ``key`` lives."""
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"frame cache key must be lowercase hex (from FrameCache.key), got {key!r}")
        return self.folder / f"{key}{ENTRY_SUFFIX}"

    # -- read -------------------------------------------------------------------------------------------

    def get(self, key: str) -> CachedFrames | None:
        """The entry ``key``, or None on a miss. A hit refreshes the entry's recency; a damaged entry is
        deleted (one warning) and is a miss."""
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                data = bytearray(stat.st_size)
                read = handle.readinto(data)
        except FileNotFoundError:
            return None
        except OSError as error:
            logger.warning("frame cache: cannot read %s (%s); decoding instead", path, error)
            return None
        try:
            entry = _decode_entry(memoryview(data)[:read], key)
        except CacheEntryError as error:
            logger.warning("frame cache: entry %s is damaged (%s); deleting it, the frames are decoded again",
                           path.name, error)
            _unlink_if_same(path, stat)
            return None
        _touch(path)
        return entry

    # -- write ------------------------------------------------------------------------------------------

    def put(self, key: str, frames: torch.Tensor, metadata: Mapping[str, Any], sample_fps: float) -> bool:
        """Store ``frames`` (any shape), the decoder ``metadata`` and ``sample_fps`` under ``key``.

        Returns False, storing nothing, when the entry cannot be kept losslessly (a dtype or metadata
        value it cannot represent), is larger than ``max_bytes``, or the write fails (a warning is
        logged: the caller's frames are fine, only the cache is skipped).
        """
        target = self.path(key)
        try:
            header, payload = _encode_entry(key, frames, metadata, sample_fps)
        except (TypeError, ValueError) as error:
            logger.warning("frame cache: not caching %s (%s)", key, error)
            return False
        size = len(_MAGIC) + _LENGTH_BYTES + len(header) + payload.nbytes + _DIGEST_SIZE
        if size > self.max_bytes:
            return False
        temp = self.folder / f"{TEMP_PREFIX}{key}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.evict(room=size)
            digest = hashlib.blake2b(digest_size=_DIGEST_SIZE)
            with open(temp, "wb") as handle:
                for part in (_MAGIC, len(header).to_bytes(_LENGTH_BYTES, "little"), header, payload):
                    digest.update(part)
                    handle.write(part)
                handle.write(digest.digest())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
            _fsync_folder(self.folder)
        except OSError as error:
            logger.warning("frame cache: cannot write %s (%s); continuing without caching it", target, error)
            _unlink_quietly(temp)
            return False
        _touch(target)
        self.evict()
        return True

    # -- housekeeping -----------------------------------------------------------------------------------

    def evict(self, room: int = 0) -> int:
        """Delete least recently used entries until the folder's entries (and writes in flight) plus
        ``room`` bytes fit in ``max_bytes``; also delete temporary files left by crashed writers.
        Returns the number of entries deleted."""
        entries, in_flight = [], 0
        now = time.time()
        for path, stat, temp in self._scan():
            if not temp:
                entries.append((stat.st_mtime_ns, path.name, stat.st_size, path))
            elif now - stat.st_mtime > STALE_TEMP_S:
                _unlink_quietly(path)
            else:
                in_flight += stat.st_size
        total = sum(entry[2] for entry in entries) + in_flight + room
        deleted = 0
        for _, _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            _unlink_quietly(path)
            total -= size
            deleted += 1
        return deleted

    def info(self) -> CacheInfo:
        """How many complete entries the folder holds and their bytes (temporary files excluded)."""
        sizes = [stat.st_size for _, stat, temp in self._scan() if not temp]
        return CacheInfo(self.folder, len(sizes), sum(sizes))

    def clear(self) -> int:
        """Delete every entry and temporary file of the cache (nothing else in the folder). Returns the
        number of entries deleted."""
        deleted = 0
        for path, _, temp in self._scan():
            if _unlink_quietly(path) and not temp:
                deleted += 1
        return deleted

    def _scan(self) -> Iterator[tuple[Path, os.stat_result, bool]]:
        """(path, stat, is_temporary) of the cache's files; files vanishing meanwhile are skipped."""
        try:
            listing = list(os.scandir(self.folder))
        except FileNotFoundError:
            return
        for item in listing:
            temp = item.name.startswith(TEMP_PREFIX)
            if not (temp or item.name.endswith(ENTRY_SUFFIX)):
                continue
            try:
                stat = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield Path(item.path), stat, temp


def _encode_entry(key: str, frames: torch.Tensor, metadata: Mapping[str, Any],
                  sample_fps: float) -> tuple[bytes, np.ndarray]:
    """(header JSON bytes, contiguous payload array) of an entry. Raises TypeError / ValueError when the
    entry cannot be represented losslessly."""
    if not isinstance(frames, torch.Tensor) or frames.dtype not in _LAYOUTS:
        raise TypeError(f"frames must be a tensor of one of {sorted(_DTYPES)}, got "
                        f"{getattr(frames, 'dtype', type(frames).__name__)}")
    frames = frames.detach().cpu()
    stored = _as_bytes(frames) if frames.dtype.is_floating_point else None
    if stored is None:
        stored = frames
    header = {
        "key": key, "shape": list(frames.shape), "dtype": str(frames.dtype).removeprefix("torch."),
        "stored": str(stored.dtype).removeprefix("torch."), "metadata": _encode_value(dict(metadata)),
        "sample_fps": _encode_value(sample_fps),
    }
    payload = np.ascontiguousarray(stored.numpy()).astype(_LAYOUTS[stored.dtype], copy=False)
    return json.dumps(header, sort_keys=True, allow_nan=False).encode(), payload.reshape(-1)


def _as_bytes(frames: torch.Tensor, chunk: int = 1 << 24) -> torch.Tensor | None:
    """``frames`` as uint8 when every value is a whole number in [0, 255] without a sign bit (so that
    converting back restores it bit for bit), else None. Checked ``chunk`` values at a time to bound the
    temporaries (a long video's frames run to gigabytes)."""
    flat = frames.reshape(-1)
    out = torch.empty(flat.shape, dtype=torch.uint8)
    for start in range(0, flat.numel(), chunk):
        part = flat[start:start + chunk]
        if not (torch.equal(part, part.round()) and bool(((part >= 0) & (part <= 255)).all())
                and not bool(torch.signbit(part).any())):
            return None
        out[start:start + chunk] = part.to(torch.uint8)
    return out.reshape(frames.shape)


def _decode_entry(data: memoryview, key: str) -> CachedFrames:
    """The entry in ``data``; raises CacheEntryError unless it is whole, unaltered and for ``key``."""
    head = len(_MAGIC) + _LENGTH_BYTES
    if len(data) < head + _DIGEST_SIZE or bytes(data[:len(_MAGIC)]) != _MAGIC:
        raise CacheEntryError("truncated or not a frame-cache entry")
    body, stored_digest = data[:-_DIGEST_SIZE], bytes(data[-_DIGEST_SIZE:])
    if hashlib.blake2b(body, digest_size=_DIGEST_SIZE).digest() != stored_digest:
        raise CacheEntryError("checksum mismatch")
    length = int.from_bytes(body[len(_MAGIC):head], "little")
    try:
        header = json.loads(bytes(body[head:head + length]))
        shape, dtype, stored = tuple(header["shape"]), _DTYPES[header["dtype"]], _DTYPES[header["stored"]]
        metadata, sample_fps = _decode_value(header["metadata"]), _decode_value(header["sample_fps"])
    except (ValueError, KeyError, TypeError) as error:
        raise CacheEntryError(f"unreadable header ({error})") from None
    if header["key"] != key:
        raise CacheEntryError("entry of another key")
    payload = body[head + length:]
    count = math.prod(shape)
    layout = np.dtype(_LAYOUTS[stored])
    if len(payload) != count * layout.itemsize:
        raise CacheEntryError("payload size does not match its shape")
    array = np.frombuffer(payload, dtype=layout, count=count).reshape(shape)
    if not layout.isnative:
        array = array.astype(layout.newbyteorder("="))
    frames = torch.from_numpy(array).to(dtype)  # shares ``data`` (a private buffer) when no cast is needed
    return CachedFrames(frames, metadata, sample_fps)


def _encode_value(value: Any) -> Any:
    """``value`` as JSON that ``_decode_value`` turns back into an equal value of the same type."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite metadata value {value}")
        return value
    if isinstance(value, list):
        return [_encode_value(item) for item in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode_value(v) for k, v in value.items()}}
    if isinstance(value, torch.Tensor) and value.dim() == 1 and value.dtype in (torch.int64, torch.int32):
        return {"__tensor__": value.tolist(), "dtype": str(value.dtype).removeprefix("torch.")}
    raise TypeError(f"metadata value of type {type(value).__name__} cannot be cached losslessly")


def _decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_value(item) for item in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return torch.tensor(value["__tensor__"], dtype=_DTYPES[value["dtype"]])
        return {k: _decode_value(v) for k, v in value["__dict__"].items()}
    return value


def _touch(path: Path) -> None:
    """Mark ``path`` as just used (explicit ns times: file-system clocks can be coarse)."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except FileNotFoundError:
        pass


def _unlink_quietly(path: Path) -> bool:
    """Delete ``path``; False when it was already gone (another process evicted it)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _unlink_if_same(path: Path, stat: os.stat_result) -> None:
    """Delete ``path`` unless another process has meanwhile replaced it with a new file."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return
    if (current.st_dev, current.st_ino) == (stat.st_dev, stat.st_ino):
        _unlink_quietly(path)


def _fsync_folder(folder: Path) -> None:
    """Persist the folder's listing after a rename (best effort: not every platform allows it)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
