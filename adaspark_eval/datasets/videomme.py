"""Video-MME from a local copy of the official release (Hugging Face ``lmms-lab/Video-MME``).

Layout under ``<root>/videomme``: ``videomme/test-00000-of-00001.parquet`` (columns ``video_id``,
``duration``, ``domain``, ``sub_category``, ``url``, ``videoID``, ``question_id``, ``task_type``,
``question``, ``options``, ``answer``) and ``data/<videoID>.mp4``. Prompt, answer parsing and the
overall score are lmms-eval's own ``videomme`` task functions; the breakdowns are accuracies over the
same per-sample dicts, by duration, domain (lmms-eval's "category") and task type. That is the ``lmms``
rule of ``datasets.scoring.videomme``, which also has the official evaluator's (``official``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from adaspark_eval.datasets.base import Benchmark, Judgement, slice_accuracy, slug
from adaspark_eval.datasets.scoring.videomme import lmms_item

ANNOTATION = "videomme/test-00000-of-00001.parquet"


class VideoMME(Benchmark):
    name = "videomme"
    lmms_task = "videomme_local"
    annotations = (ANNOTATION,)
    scorer_fields = ("answer", "duration", "domain", "sub_category", "task_type")
    source = (f"it is {ANNOTATION} of the Hugging Face dataset lmms-lab/Video-MME; unzip its videos_chunked_*.zip "
              "beside its videomme/ folder so that data/<videoID>.mp4 exist")

    @cached_property
    def _slices(self) -> dict[str, tuple[str, str]]:
        """Breakdown metric -> (field of lmms-eval's per-sample dict, value)."""
        from lmms_eval.tasks.videomme.utils import CATEGORIES, TASK_CATEGORIES, VIDEO_TYPE

        return {
            **{duration: ("duration", duration) for duration in VIDEO_TYPE},
            **{f"domain_{slug(domain)}": ("category", domain) for domain in CATEGORIES},
            **{f"task_{slug(task)}": ("task_category", task) for task in TASK_CATEGORIES},
        }

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("overall", *self._slices)

    def read_rows(self, annotation: Path) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        return pq.read_table(annotation).to_pylist()

    def video_path(self, folder: Path, row: dict[str, Any]) -> Path:
        """``data/<videoID>.mp4``, or the ``.MP4`` / ``.mkv`` file the release has for a few videos."""
        stem = folder / "data" / str(row["videoID"])
        for suffix in (".mp4", ".MP4", ".mkv"):
            if stem.with_suffix(suffix).is_file():
                return stem.with_suffix(suffix)
        return stem.with_suffix(".mp4")

    def row_id(self, row: dict[str, Any]) -> str:
        return str(row["question_id"])

    def gold(self, doc: dict[str, Any]) -> str:
        return str(doc["answer"])

    def category(self, doc: dict[str, Any]) -> dict[str, str]:
        return {"duration": doc["duration"], "domain": doc["domain"], "sub_category": doc["sub_category"],
                "task_type": doc["task_type"]}

    def judge(self, doc: dict[str, Any], prediction: str) -> Judgement:
        item = lmms_item(doc, prediction)
        return Judgement(parsed=item["pred_answer"] or None, correct=item["score"] == 1.0, item=item)

    def aggregate(self, metric: str, items: Sequence[dict[str, Any]]) -> float:
        if metric == "overall":
            from lmms_eval.tasks.videomme.utils import videomme_aggregate_results

            return float(videomme_aggregate_results(list(items)))
        field, value = self._slices[metric]
        return slice_accuracy(items, field, value)
