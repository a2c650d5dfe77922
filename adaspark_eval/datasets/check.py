"""``data check``: is a benchmark's local copy complete? Annotation present, readable, not empty and
holding every field the scorers read (``Benchmark.scorer_fields``), every referenced video present and
(optionally) decodable."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from typing import Any

from adaspark_eval.datasets.base import Benchmark, DatasetMissing
from adaspark_eval.data.video import VideoError, probe_video, read_video


@dataclass
class DataCheck:
    """What ``check_dataset`` found for one benchmark under one root.

    Attributes:
        problem: why the annotation cannot be used (missing, unreadable, empty or lacking a field the
            scorers read), in one line naming the file (and the field); None if fine.
        invalid: the annotation is there but unreadable, empty or lacking a scorer field (a damaged or
            wrong file, not a missing one: ``data check`` exits 2 on it).
        samples: annotation rows; videos: distinct videos they reference.
        missing: referenced videos that do not exist.
        outside: one line per referenced video outside the benchmark folder (never opened).
        repeated: question ids the annotation gives more than one row (a run keeps them apart as
            ``id#2``, ``id#3``, ... but they usually mean a damaged or merged file).
        corrupt: one line per video that exists but does not decode (only with ``decode=True``).
    """

    benchmark: str
    folder: Path
    annotation: Path | None = None
    problem: str | None = None
    invalid: bool = False
    samples: int = 0
    videos: int = 0
    missing: list[Path] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """The annotation can be read (a run can start; bad videos become per-sample errors)."""
        return self.problem is None

    @property
    def ok(self) -> bool:
        """Nothing is missing or corrupt."""
        return self.usable and not (self.missing or self.corrupt or self.outside or self.repeated)

    def lines(self, limit: int = 20) -> list[str]:
        """A human report: one status line, then up to ``limit`` lines per kind of problem."""
        if self.problem is not None:
            return [f"{self.benchmark}: {'INVALID' if self.invalid else 'MISSING'}: {self.problem}"]
        status = "OK" if self.ok else "INCOMPLETE"
        out = [f"{self.benchmark}: {status}: {self.samples} samples, {self.videos} videos, "
               f"annotation {self.annotation}"]
        for title, entries, fix in (
            ("missing videos", [str(p) for p in self.missing], "put the official files there"),
            ("corrupt videos", self.corrupt, "download them again"),
            ("videos outside the benchmark folder", self.outside, "fix their paths, or pass --allow-outside-root"),
            ("repeated question ids", self.repeated, "a run keeps them apart as id#2, ...; check the annotation"),
        ):
            if entries:
                out.append(f"  {len(entries)} {title} ({fix}):")
                out += [f"    {entry}" for entry in entries[:limit]]
                if len(entries) > limit:
                    out.append(f"    ... and {len(entries) - limit} more")
        return out


def check_dataset(benchmark: Benchmark, root: Path, decode: bool = True, workers: int = 8) -> DataCheck:
    """Check ``benchmark`` under data ``root``; ``decode`` also decodes the first and last frame of
    every present video (``workers`` at a time)."""
    report = DataCheck(benchmark.name, benchmark.folder(root))
    try:
        report.annotation = benchmark.annotation(root)
        rows = benchmark.read_rows(report.annotation)
        report.problem = annotation_problem(benchmark, report.annotation, rows)
        if report.problem is not None:
            report.invalid = True
            return report
        docs = benchmark.read_docs(root)
    except DatasetMissing:
        report.problem = benchmark.missing(root)
        return report
    except Exception as error:  # a truncated parquet / invalid json: any reader error
        report.problem = (f"{report.annotation} cannot be read ({str(error).splitlines()[0][:120]}): "
                          f"replace it with the official file; {benchmark.source}")
        report.invalid = True  # there, but damaged: not MISSING
        return report
    report.samples = len(docs)
    counts = Counter(benchmark.row_id(row) for row in rows)
    report.repeated = [f"{row_id} ({count} rows)" for row_id, count in sorted(counts.items()) if count > 1]
    report.outside = sorted({doc["path_problem"] for doc in docs if doc.get("path_problem")})
    videos = sorted({Path(doc["video_path"]) for doc in docs if not doc.get("path_problem")})
    report.videos = len(videos) + len(report.outside)
    report.missing = [path for path in videos if not path.is_file()]
    if decode:
        present = [path for path in videos if path.is_file()]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            report.corrupt = [reason for reason in pool.map(video_problem, present) if reason is not None]
    return report


def annotation_problem(benchmark: Benchmark, annotation: Path, rows: Any) -> str | None:
    """One line naming ``annotation`` and what the scorers miss in its ``rows``: no rows at all, or the
    first of ``benchmark.scorer_fields`` absent (or null) in some row; None when every row has them all."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        return (f"{annotation} is not a list of annotation rows: replace it with the official file; "
                f"{benchmark.source}")
    if not rows:
        return f"{annotation} holds no annotation rows: replace it with the official file; {benchmark.source}"
    for name in benchmark.scorer_fields:
        lacking = [index for index, row in enumerate(rows) if row.get(name) is None]
        if lacking:
            return (f"{annotation} has no field '{name}' in {len(lacking)} of {len(rows)} rows (first: row "
                    f"{lacking[0]}), which the scorers read: replace it with the official file; {benchmark.source}")
    return None


def video_problem(path: Path) -> str | None:
    """None when ``path`` decodes (first and last frame) and has the 2 frames a run reads at least, else
    the one-line reason."""
    try:
        frames = probe_video(path).frames
        if frames < 2:
            return (f"{path} has {frames} frame{'s' if frames != 1 else ''}: at least 2 are needed (Qwen2.5-VL "
                    "reads frames in pairs; lmms-eval's stock class cannot read it either)")
        read_video(path, num_frames=2)
    except VideoError as error:
        return str(error)
    return None
