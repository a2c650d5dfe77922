"""VideoNIAH (VNBench) from a local folder: the official release or a set ``adaspark-eval niah generate``
wrote.

Layout under ``<root>/videoniah``: ``VNBench-main-4try.json`` (official) or ``videoniah-4try.json``
(generated), a list of ``{video, question, options (4), gt, gt_option, needle_time, length, type,
try, ...}``, with each ``video`` relative to this folder (or absolute). The prompt is the official
VNBench one (question, ``A. ...`` to ``D. ...``, then the instruction); parsing and the circular
4-try scores per needle type, per task (ret/ord/cnt) and overall are ``data.niah.scoring``: the ``lenient``
rule of ``datasets.scoring.videoniah`` (what a run's ``scores`` hold), which also has VNBench's own
``eval.py`` rule (``official``, the one for paper tables).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaspark_eval.datasets.base import Benchmark, Judgement
from adaspark_eval.data.niah import ANNOTATION_FILE
from adaspark_eval.data.niah.questions import LETTERS, OFFICIAL_TYPES, TASKS
from adaspark_eval.data.niah.scoring import parse_choice, score

OFFICIAL_ANNOTATION = "VNBench-main-4try.json"
# Per-try fields the scores and the depth x length table read (besides ``correct``); ``options`` lets the
# lenient rule rescore a record (it reads an answer naming one option's text as that option).
NIAH_FIELDS = ("video", "type", "try", "question_id", "depth", "length", "needle_time", "options")


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, str] | None = None) -> str:
    """The VNBench prompt: ``pre_prompt``, the question, one ``X. option`` line per option, ``post_prompt``."""
    kwargs = lmms_eval_specific_kwargs or {}
    options = "\n".join(f"{letter}. {option}" for letter, option in zip(LETTERS, doc["options"]))
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}\n{options}{kwargs.get('post_prompt', '')}"


class VideoNIAH(Benchmark):
    name = "videoniah"
    lmms_task = "videoniah_local"
    annotations = (OFFICIAL_ANNOTATION, ANNOTATION_FILE)
    source = (f"put the VNBench release ({OFFICIAL_ANNOTATION} and its videos) in that folder, or generate a set "
              "into it with `adaspark-eval niah generate --out <folder>`")
    metrics = (*OFFICIAL_TYPES, *TASKS, "overall")
    scorer_fields = ("gt", "gt_option", "options", "type", "try")

    def read_rows(self, annotation: Path) -> list[dict[str, Any]]:
        return json.loads(annotation.read_text(encoding="utf-8"))

    def video_path(self, folder: Path, row: dict[str, Any]) -> Path:
        return folder / str(row["video"])  # an absolute ``video`` stays as it is

    def row_id(self, row: dict[str, Any]) -> str:
        return str(row.get("question_id") or f"{row['video']}|{row['type']}|{row['try']}")

    def gold(self, doc: dict[str, Any]) -> str:
        return str(doc.get("gt_option") or LETTERS[list(doc["options"]).index(doc["gt"])])

    def category(self, doc: dict[str, Any]) -> dict[str, str]:
        return {"type": doc["type"], "task": doc["type"].split("_")[0]}

    def record_fields(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {"niah": {field: doc[field] for field in NIAH_FIELDS if doc.get(field) is not None}}

    def judge(self, doc: dict[str, Any], prediction: str) -> Judgement:
        parsed = parse_choice(prediction, doc["options"])
        correct = parsed == self.gold(doc)
        return Judgement(parsed=parsed, correct=correct,
                         item={**self.record_fields(doc)["niah"], "correct": correct, "score": float(correct)})

    def aggregate(self, metric: str, items: Sequence[dict[str, Any]]) -> float:
        return float(score(list(items)).get(metric, math.nan))
