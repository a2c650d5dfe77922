"""What the harness knows about one benchmark: where its files lie under a local data root, how its
annotation becomes lmms-eval docs, and how one prediction is judged and aggregated.

A data root holds one folder per benchmark, named after it (``<root>/videomme``, ``<root>/mlvu_dev``,
``<root>/videoniah``), each laid out as the official release. Scores are percentages (0..100).
"""

from __future__ import annotations

import math
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

DATA_ROOT_ENV = "ADASPARK_DATA_ROOT"
OUTSIDE_ROOT_ENV = "ADASPARK_ALLOW_OUTSIDE_ROOT"  # set (to 1) by --allow-outside-root


class DatasetMissing(FileNotFoundError):
    """A benchmark's annotation file is not under the data root; the message says where it goes."""


class AnnotationInvalid(ValueError):
    """A benchmark's annotation has no rows, or a row lacks a field the scorers need; the message
    (one line) names the file and the field."""


@dataclass(frozen=True)
class Judgement:
    """One prediction against its gold answer.

    Attributes:
        parsed: the option letter read from the prediction, None when it names none.
        correct: whether ``parsed`` is the gold option.
        item: what this benchmark's aggregations read for the sample (lmms-eval's per-sample metric value).
    """

    parsed: str | None
    correct: bool
    item: dict[str, Any]


def data_root(root: str | Path | None = None) -> Path:
    """``root`` if given, else ``$ADASPARK_DATA_ROOT``; a one-line error naming both otherwise."""
    value = root if root is not None else os.environ.get(DATA_ROOT_ENV)
    if not value:
        raise DatasetMissing(f"no dataset root given: pass --data-root DIR or set {DATA_ROOT_ENV}=DIR")
    return Path(value).expanduser().absolute()


def outside_problem(folder: Path, video: Path) -> str | None:
    """Why ``video`` may not be read for a benchmark whose folder is ``folder``: it resolves (``..``, a
    symlink, an absolute path) outside ``folder``; None when inside, or when ``$ADASPARK_ALLOW_OUTSIDE_ROOT``
    allows any path (``--allow-outside-root``)."""
    if os.environ.get(OUTSIDE_ROOT_ENV, "") not in ("", "0"):
        return None
    resolved, base = video.resolve(), folder.resolve()
    if resolved == base or base in resolved.parents:
        return None
    return (f"video {video} resolves to {resolved}, outside the benchmark folder {base}: fix the annotation's "
            "path, or pass --allow-outside-root if reading it is intended")


def slug(text: str) -> str:
    """``"Film & Television"`` -> ``"film_television"`` (metric-name form)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def slice_accuracy(items: Sequence[dict[str, Any]], field: str, value: str) -> float:
    """Percent of ``items`` with ``item[field] == value`` that are right (``item["score"]`` 0/1);
    NaN when none has that value."""
    scores = [float(item["score"]) for item in items if item[field] == value]
    return 100.0 * sum(scores) / len(scores) if scores else math.nan


class Benchmark(ABC):
    """One benchmark. Subclasses name their layout and implement reading, judging and aggregating.

    Docs are the annotation rows as the official release has them, plus ``benchmark`` (this name),
    ``video_path`` (absolute path of the row's video, whether or not it exists), ``path_problem`` (None,
    or why the video may not be read: it lies outside the benchmark folder, ``outside_problem``) and
    ``sample_id`` (the row's id; a repeated id gets ``#2``, ``#3``, ... in file order, so results keyed by it
    never mix).
    """

    name: ClassVar[str]
    lmms_task: ClassVar[str]  # the lmms-eval task (tasks/<name>/*.yaml)
    annotations: ClassVar[tuple[str, ...]]  # accepted annotation files, relative to the benchmark folder
    source: ClassVar[str]  # where the official files come from and where they go, for messages
    # annotation fields the scoring rules (``datasets.scoring``) read, directly or through the record:
    # ``data check`` and a run's data check stop on a row without one
    scorer_fields: ClassVar[tuple[str, ...]]

    @property
    @abstractmethod
    def metrics(self) -> tuple[str, ...]:
        """Metric names the lmms-eval task reports (``scores["<name>/<metric>"]`` in a summary)."""

    def folder(self, root: Path) -> Path:
        return Path(root) / self.name

    def annotation(self, root: Path) -> Path:
        """The first accepted annotation file present; ``DatasetMissing`` naming where it goes otherwise."""
        folder = self.folder(root)
        for relative in self.annotations:
            if (folder / relative).is_file():
                return folder / relative
        raise DatasetMissing(f"{self.name}: {self.missing(root)}")

    def missing(self, root: Path) -> str:
        """What to say when the annotation is not under ``root``: the path expected and where it comes from."""
        return f"{self.folder(root) / self.annotations[0]} not found; {self.source}"

    def read_docs(self, root: Path) -> list[dict[str, Any]]:
        """Every annotation row as an lmms-eval doc (see the class docstring)."""
        folder = self.folder(root).absolute()
        seen: Counter[str] = Counter()
        docs = []
        for row in self.read_rows(self.annotation(root)):
            row_id = self.row_id(row)
            seen[row_id] += 1
            video = self.video_path(folder, row)
            docs.append({**row, "benchmark": self.name, "video_path": str(video),
                         "path_problem": outside_problem(folder, video),
                         "sample_id": row_id if seen[row_id] == 1 else f"{row_id}#{seen[row_id]}"})
        return docs

    @abstractmethod
    def read_rows(self, annotation: Path) -> list[dict[str, Any]]:
        """The annotation file's rows, as plain Python values."""

    @abstractmethod
    def video_path(self, folder: Path, row: dict[str, Any]) -> Path:
        """Where the video of ``row`` lies under the benchmark ``folder``."""

    @abstractmethod
    def row_id(self, row: dict[str, Any]) -> str:
        """The id the annotation gives the row (its question id)."""

    def sample_id(self, doc: dict[str, Any]) -> str:
        """The sample's id, unique within the benchmark (see the class docstring)."""
        return str(doc["sample_id"])

    @abstractmethod
    def gold(self, doc: dict[str, Any]) -> str:
        """The gold option letter."""

    @abstractmethod
    def category(self, doc: dict[str, Any]) -> dict[str, str]:
        """The breakdown the benchmark reports the sample under, e.g. ``{"duration": "short", ...}``."""

    @abstractmethod
    def judge(self, doc: dict[str, Any], prediction: str) -> Judgement:
        """Parse ``prediction`` and score it as the official task does."""

    @abstractmethod
    def aggregate(self, metric: str, items: Sequence[dict[str, Any]]) -> float:
        """Percent score ``metric`` over the judgements' items; NaN when no sample falls in it."""

    def record_fields(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Benchmark-specific fields of a sample record (none by default)."""
        return {}
