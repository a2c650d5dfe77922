"""VideoNIAH (VNBench) scoring rules on sample records.

``lenient`` (also reached as ``lmms``: lmms-eval has no VNBench task, so this harness's own parser
stands in for it): ``data.niah.scoring.parse_choice`` reads a letter in many phrasings, or an answer
naming exactly one option's text as that option; a question counts when 4 distinct tries are present
and all are right; ``ret``/``ord``/``cnt`` are the means of their types and ``overall`` the mean of those.

``official``: ``evaluation/eval.py`` of the VNBench release, re-implemented from its behaviour: the
output is cut at its first ``.``; in what remains ``A``, ``B``, ``C``, ``D`` are looked for in that
order, case-sensitively, anywhere, and the first found is the choice. A question counts when exactly 4
of its records are right; a type scores its questions right / questions; ``overall`` is the mean over
the types present. (The release's other script, ``llava_examples/evaluation_utils.py``, reads only the
first character; ``eval.py`` is the reference.)

Records need ``answer`` (the gold letter) and ``niah.video`` / ``niah.type`` / ``niah.try``
(``niah.question_id`` when the set has one); the lenient rule also reads ``niah.options`` when the
record has it (records written before the harness stored it are read by letter only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from adaspark_eval.data.niah.questions import TASKS
from adaspark_eval.data.niah.scoring import parse_choice, question_key, score
from adaspark_eval.datasets.scoring.records import Record, mean, percent, prediction, present, require

FIELDS = ("answer", "niah.video", "niah.type", "niah.try")
OFFICIAL_LETTERS = ("A", "B", "C", "D")
OFFICIAL_RIGHT_TRIES = 4


def official_choice(text: str) -> str | None:
    """The letter ``eval.py`` reads from ``text``, None when it reads none."""
    text = text.split(".")[0]  # only what comes before the first ".": ".B" reads nothing, "B. red" reads B
    for letter in OFFICIAL_LETTERS:  # letter order, not position: "D or B" reads as B, "Answer: B" as A
        if letter in text:  # case-sensitive substring: "a" reads nothing, "All of them" reads A
            return letter
    # With no capital A-D the script compares the cut text itself with the gold letter, which can then
    # never be equal: the same as reading nothing.
    return None


def lenient_choice(record: Record) -> str | None:
    """The letter ``parse_choice`` reads from the record's prediction (with its options when stored)."""
    return parse_choice(prediction(record), (record.get("niah") or {}).get("options"))


def lenient_scores(records: Sequence[Record]) -> dict[str, float]:
    """Per type, per task and ``overall`` by the lenient rule (``data.niah.scoring.score``)."""
    require("videoniah", "lenient", records, FIELDS)
    if not records:
        return {}
    return present(score(_tries(records)))


def lenient_group(records: Sequence[Record]) -> float:
    """The lenient ``overall`` of ``records`` (a category cell of a report)."""
    return lenient_scores(records).get("overall", float("nan"))


def official_scores(records: Sequence[Record]) -> dict[str, float]:
    """Per type (as ``eval.py``), per task (the mean of its types present: ``eval.py`` prints none) and
    ``overall`` (``eval.py``'s: the mean over the types present, not over the tasks)."""
    require("videoniah", "official", records, FIELDS)
    # eval.py skips a record whose pred is None: a failed sample here. Its question then has fewer than 4
    # right records (wrong); a question all of whose tries failed leaves the denominator.
    answered = [r for r in records if r.get("prediction") is not None]
    right: Counter[tuple[str, str, str]] = Counter()
    for record in answered:
        key = question_key(record["niah"])  # eval.py groups by question_id[:-2] within a type: one question
        right[key] += official_choice(prediction(record)) == str(record["answer"])
    types: dict[str, list[bool]] = {}
    for (_, type_, _), count in right.items():
        # exactly 4 right records: 3 of 4 is wrong, and so are 5 right duplicates of the 4 tries
        types.setdefault(type_, []).append(count == OFFICIAL_RIGHT_TRIES)
    out = {type_: percent(sum(questions), len(questions)) for type_, questions in sorted(types.items())}
    tasks = {task: mean(v for t, v in out.items() if t.split("_")[0] == task) for task in TASKS}
    overall = mean(out.values())
    return present({**out, **tasks, "overall": overall})


def official_group(records: Sequence[Record]) -> float:
    """The official ``overall`` of ``records`` (a category cell of a report)."""
    return official_scores(records).get("overall", float("nan"))


def _tries(records: Sequence[Record]) -> list[Record]:
    """The records as ``data.niah.scoring`` reads them: their ``niah`` fields and ``correct``."""
    return [{**r["niah"], "correct": lenient_choice(r) == str(r["answer"])} for r in records]
