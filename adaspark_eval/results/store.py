"""A run folder on disk: ``samples.jsonl`` written sample by sample, ``summary.json`` replaced atomically.

A sample line is appended, flushed and fsynced as soon as the sample finishes, so a run killed at any
moment (``kill -9`` included) loses at most the sample in flight; a torn last line is cut off when the
folder is opened again. Samples are keyed by ``(task, sample_id, config_key)``: a rerun skips the keys
already present and a changed config (another key) never reuses them.

In a run of several processes (``models.parallel``) rank ``k > 0`` appends to its own
``samples.rank<k>.jsonl``, so no two processes write one file; when the run ends, rank 0 folds those
files into ``samples.jsonl`` (``merge_ranks``). Readers see every samples file of the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SAMPLES = "samples.jsonl"
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


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a ``samples.jsonl``; a torn last line (killed mid-write) is skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def read_run_samples(folder: Path) -> dict[SampleKey, dict[str, Any]]:
    """The records of a run folder by key, from ``samples.jsonl`` and any rank's samples file; a record
    without error wins over one with (a rank may have retried a sample another rank failed)."""
    records: dict[SampleKey, dict[str, Any]] = {}
    for path in [folder / SAMPLES, *sorted(folder.glob(RANK_SAMPLES))]:
        for record in read_samples(path):
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
        self._repair_tail()
        self.records = read_run_samples(self.folder)

    def _repair_tail(self) -> None:
        """Cut a partial last line left by a killed writer, so the next append starts on a new line."""
        if not self.samples_path.exists():
            return
        data = self.samples_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.samples_path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

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
