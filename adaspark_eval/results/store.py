"""A run folder on disk: ``samples.jsonl`` written sample by sample, ``summary.json`` replaced atomically.

A sample line is appended, flushed and fsynced as soon as the sample finishes, so a run killed at any
moment (``kill -9`` included) loses at most the sample in flight; a torn last line is cut off when the
folder is opened again. Samples are keyed by ``(task, sample_id, config_key)``: a rerun skips the keys
already present and a changed config (another key) never reuses them.

A line that does not parse (a damaged file) is never silently dropped: ``read_samples`` names its file and
line in ``problems``, and ``RunStore`` logs each one when it opens the folder.

A folder written by a run is locked (``RunLock``: a ``.lock`` file holding the owner's pid and host), so two
runs never compute the same samples into one folder; a lock left by a process that died is taken over with
a warning.

In a run of several processes (``models.parallel``) rank ``k > 0`` appends to its own
``samples.rank<k>.jsonl``, so no two processes write one file; when the run ends, rank 0 folds those
files into ``samples.jsonl`` (``merge_ranks``). Readers see every samples file of the folder.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

SAMPLES = "samples.jsonl"
LOCK = ".lock"
RANK_SAMPLES = "samples.rank*.jsonl"
SUMMARY = "summary.json"
REQUIRED_FIELDS = ("task", "sample_id", "config_key", "prediction", "answer", "correct", "error")

SampleKey = tuple[str, str, str]


def sample_key(record: dict[str, Any]) -> SampleKey:
    """The resume key of a sample record."""
    return str(record["task"]), str(record["sample_id"]), str(record["config_key"])


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_samples(path: Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Every complete record of a ``samples.jsonl``. A line that is not a JSON record is skipped and, when
    ``problems`` is given, named there (file and line number; a torn last line, as a killed writer leaves,
    says so)."""
    if not path.exists():
        return []
    records = []
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or any(f not in record for f in ("task", "sample_id", "config_key")):
                raise ValueError("not a sample record")
            records.append(record)
        except ValueError:
            if problems is not None:
                torn = number == len(lines) and not text.endswith("\n")
                what = "torn last line (a run was killed while writing it)" if torn else "damaged line"
                problems.append(f"{path}:{number}: {what} skipped; its sample counts as not done")
    return records


def read_run_samples(folder: Path, problems: list[str] | None = None) -> dict[SampleKey, dict[str, Any]]:
    """The records of a run folder by key, from ``samples.jsonl`` and any rank's samples file; a record
    without error wins over one with (a rank may have retried a sample another rank failed). Lines that
    do not parse are named in ``problems``."""
    records: dict[SampleKey, dict[str, Any]] = {}
    for path in [folder / SAMPLES, *sorted(folder.glob(RANK_SAMPLES))]:
        for record in read_samples(path, problems):
            key = sample_key(record)
            if key not in records or records[key]["error"] is not None:
                records[key] = record
    return records


class RunStore:
    """The samples and summary of one run folder (created on the first write).

    Args:
        rank: the writing process's rank; rank 0 (and a single process) appends to ``samples.jsonl``.
    """

    def __init__(self, folder: str | Path, rank: int = 0) -> None:
        self.folder = Path(folder)
        self.samples_path = self.folder / (SAMPLES if rank == 0 else f"samples.rank{rank}.jsonl")
        self.summary_path = self.folder / SUMMARY
        self.problems: list[str] = []
        self._repair_tail()
        self.records = read_run_samples(self.folder, self.problems)
        for problem in self.problems:
            logger.warning("%s", problem)

    def _repair_tail(self) -> None:
        """Cut a partial last line left by a killed writer, so the next append starts on a new line (and
        say so)."""
        if not self.samples_path.exists():
            return
        data = self.samples_path.read_bytes()
        if data and not data.endswith(b"\n"):
            line = data.count(b"\n") + 1
            with self.samples_path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
            self.problems.append(f"{self.samples_path}:{line}: torn last line (a run was killed while writing it) "
                                 "cut off; its sample is computed again")

    def has(self, key: SampleKey) -> bool:
        return key in self.records

    def append(self, record: dict[str, Any]) -> None:
        """Persist one finished sample (must hold ``REQUIRED_FIELDS``)."""
        missing = [f for f in REQUIRED_FIELDS if f not in record]
        if missing:
            raise ValueError(f"sample record lacks {missing}")
        line = json.dumps(record, sort_keys=True, default=str)
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.samples_path.open("a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[sample_key(record)] = record

    def merge_ranks(self) -> None:
        """Fold the other ranks' samples files into ``samples.jsonl`` and remove them (rank 0, once every
        rank has finished); ``records`` then holds every rank's samples."""
        ranks = sorted(self.folder.glob(RANK_SAMPLES))
        if not ranks:
            return
        mine = {sample_key(r): r for r in read_samples(self.folder / SAMPLES)}
        self.records = read_run_samples(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / SAMPLES).open("a") as handle:
            for key, record in self.records.items():
                if mine.get(key) != record:
                    handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        for path in ranks:
            path.unlink()

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.summary_path, summary)


def check_writable(folder: str | Path) -> Path:
    """``folder`` as a run folder that can be written: an existing folder, or a path whose nearest existing
    parent is a writable folder. Raises ``ValueError`` naming the problem and the fix (checked before any
    model loads)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output {folder} is a file, not a folder: pass a folder path")
    ancestor = folder
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"--output {folder} lies under {ancestor}, which is a file: pass a folder path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"--output {folder}: {ancestor} is not writable by this user: pass a folder you can write")
    return folder


class RunFolderBusy(ValueError):
    """Another live process is writing the run folder; the message names it and the fix."""


class RunLock:
    """The lock of a run folder while a run writes it: ``<folder>/.lock`` holds the owner's pid, host and
    command. Re-entrant within one process (a sweep's points, a run's evaluate).

    Raises ``RunFolderBusy`` on entry when a live process holds it. A lock whose process is gone (same
    host, pid not running) is taken over with a warning; one of another host is left alone (its owner
    cannot be checked from here), naming the file to delete if that run is known to be dead.
    """

    _held: dict[Path, int] = {}

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder).resolve() / LOCK

    def __enter__(self) -> RunLock:
        if self._held.get(self.path):
            self._held[self.path] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "command": " ".join(sys.argv)[:300]}
        for _ in range(3):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale(mine)
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump(mine, handle)
            self._held[self.path] = 1
            return self
        raise RunFolderBusy(f"could not lock {self.path.parent}: its lock file {self.path} keeps changing; "
                            "is another run starting on it?")

    def _take_over_if_stale(self, mine: dict[str, Any]) -> None:
        try:
            owner = json.loads(self.path.read_text() or "{}")
        except FileNotFoundError:
            return  # released meanwhile: try again
        except ValueError:
            owner = {}
        pid, host = owner.get("pid"), owner.get("host")
        if not owner or (host == mine["host"] and isinstance(pid, int) and not _alive(pid)):
            logger.warning("%s: taking over the lock of process %s, which is no longer running", self.path.parent,
                           pid if owner else "(unreadable lock file)")
            self.path.unlink(missing_ok=True)
            return
        where = "this machine" if host == mine["host"] else f"host {host}"
        raise RunFolderBusy(f"{self.path.parent} is being written by another run (pid {pid} on {where}, since "
                            f"{owner.get('since', '?')}): wait for it, or pass another --output "
                            f"(if that run is dead, delete {self.path})")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._held[self.path] -= 1
        if self._held[self.path]:
            return
        del self._held[self.path]
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (FileNotFoundError, ValueError):
            pass


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
