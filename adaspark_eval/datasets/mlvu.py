"""MLVU (dev) from a local copy of the release lmms-eval reads (Hugging Face ``sy1998/MLVU_dev``).

Layout under ``<root>/mlvu_dev``: ``mlvu/test-00000-of-00001.parquet`` (columns ``video_name``,
``duration``, ``question`` (options included, ``(A) ...``), ``candidates``, ``answer`` (a letter),
``task_type``, ``question_id``) and each video at ``<video_name>``. Prompt, answer parsing and M-Avg
are lmms-eval's own ``mlvu_dev`` task functions. M-Avg is lmms-eval's macro mean over the seven
multiple-choice task types (a type with no sample counts 0, as there); each type's accuracy is
reported beside it. That is the ``lmms`` rule of ``datasets.scoring.mlvu``, which also has the official
evaluator's (``official``: M-Avg over the types present).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaspark_eval.datasets.base import Benchmark, Judgement, slice_accuracy

ANNOTATION = "mlvu/test-00000-of-00001.parquet"
TASK_TYPES = ("plotQA", "needle", "ego", "count", "order", "anomaly_reco", "topic_reasoning")


class MLVUDev(Benchmark):
    name = "mlvu_dev"
    lmms_task = "mlvu_dev_local"
    annotations = (ANNOTATION,)
    source = (f"it is {ANNOTATION} of the Hugging Face dataset sy1998/MLVU_dev; unzip its video zips beside its "
              "mlvu/ folder so that every <video_name> of the parquet lies there")
    metrics = ("m_avg", *TASK_TYPES)
    scorer_fields = ("answer", "task_type", "candidates")

    def read_rows(self, annotation: Path) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        return pq.read_table(annotation).to_pylist()

    def video_path(self, folder: Path, row: dict[str, Any]) -> Path:
        return folder / str(row["video_name"])

    def row_id(self, row: dict[str, Any]) -> str:
        return str(row["question_id"])

    def gold(self, doc: dict[str, Any]) -> str:
        return str(doc["answer"])

    def category(self, doc: dict[str, Any]) -> dict[str, str]:
        return {"task_type": doc["task_type"]}

    def judge(self, doc: dict[str, Any], prediction: str) -> Judgement:
        from lmms_eval.tasks.mlvu.utils import mlvu_process_results

        item = mlvu_process_results(doc, [prediction])["mlvu_percetion_score"]
        correct = item["pred_answer"] == item["answer"]
        return Judgement(parsed=item["pred_answer"] or None, correct=correct, item={**item, "score": float(correct)})

    def aggregate(self, metric: str, items: Sequence[dict[str, Any]]) -> float:
        if metric == "m_avg":
            from lmms_eval.tasks.mlvu.utils import mlvu_aggregate_results_dev

            return float(mlvu_aggregate_results_dev(list(items)))
        return slice_accuracy(items, "task_type", metric)
