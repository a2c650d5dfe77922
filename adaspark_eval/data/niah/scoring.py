"""VNBench scoring: the option letter a model picked, circular accuracy, and the depth x length table.

Circular rule (as the official VNBench ``eval.py``): the tries of one question (same options,
rotated) are grouped by ``question_key`` and the question counts right only when ``tries`` distinct
tries are present and every one of them is right. A subtype score is the percentage of its questions
right; ``ret``/``ord``/``cnt`` are the means of their subtypes present; ``overall`` is the mean of
those task scores. All scores are percentages, 0..100.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from adaspark_eval.data.niah.questions import TASKS

_CHOICE_PATTERNS = [
    re.compile(r"^\W*([A-Da-d])\W*$"),                              # "B", "(b)", "C."
    re.compile(r"^\s*[(\[]?([A-Da-d])[)\].:,]"),                    # "B. red", "(b) red", "C: ..."
    re.compile(r"^\s*(?!A\s+[a-z])([A-D])\s"),                      # "B red star" (not the article "A red")
    re.compile(r"(?i:answer|option|choice)\w*\s*(?:is|:|would be)?\s*(?:option\s*)?[(\[]?"
               r"([A-D](?![A-Za-z])|[a-d](?=[)\]]|\s*(?:$|[.,;:!?])))"),  # "The answer is B", "answer: (c)"
    re.compile(r"[(\[]([A-Da-d])[)\]]"),                            # "I think (B) ..."
    re.compile(r"(?<![A-Za-z])([B-D](?![A-Za-z])|A(?=\s*(?:$|[.,;:!?)])))"),  # "... so C." / "... A."
]


def parse_choice(prediction: str, options: Sequence[str] | None = None) -> str | None:
    """The option letter (``"A"``..``"D"``) a free-form answer picks, or None when it names none: the
    ``lenient`` scoring rule of VideoNIAH (``datasets.scoring.videoniah``; ``official``, VNBench's own
    ``eval.py``, is the rule for paper tables).

    Exactly what it accepts, tried in this order, the first that matches deciding:

    1. the whole answer is one letter A-D or a-d between any non-word characters: "B", "(b)", "C.", " d ";
    2. the answer starts (after spaces) with a letter, optionally after "(" or "[", followed by one of
       ``) ] . : ,``: "B. red", "(c) blue", "[D] ...", "a: ...";
    3. it starts with a capital B-D, or a capital A not followed by spaces and a lowercase word, then a
       space: "B red star", "D or B" (D); "A red star" is the article, not A;
    4. "answer", "option" or "choice" (any case, any word ending: "Answer", "options"), then optionally
       "is", ":" or "would be", optionally "option", optionally "(" or "[", then a capital A-D not
       followed by a letter, or a lowercase a-d followed by ")" / "]" or by the end or punctuation:
       "The answer is B", "answer: (c)", "Option C.", "The correct option is b.";
    5. a letter in brackets anywhere: "I think (A) fits", "[d]";
    6. anywhere, a capital B-D not touching another ASCII letter, or a capital A so followed by the end,
       punctuation or ")": "Based on the video, C", "... so A.", "答案是C";
    7. no letter read: the answer contains, case-insensitively and as whole words, the full text of
       exactly one of ``options`` ("the blue circle" -> that option; two options named -> None).

    Two letters ("BC"), a lone "E", a fullwidth "Ｂ", an empty or blank answer read None. Being lenient,
    it reads some answers the official rule does not ("b", "(c)", option text) and some differently
    ("Answer: C" is C here, A under ``eval.py``; "D or B" is D here, B there).
    """
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(prediction)
        if match:
            return match.group(1).upper()
    named = [letter for letter, option in zip("ABCD", options or ())
             if re.search(rf"(?<!\w){re.escape(option.strip())}(?!\w)", prediction, flags=re.IGNORECASE)]
    return named[0] if len(named) == 1 else None


def question_key(record: dict) -> tuple[str, str, str]:
    """(``video``, ``type``, ``question_id`` less its ``_<try>`` suffix, or "" when absent): the tries
    of one question share it. Official VNBench has one question per video and type."""
    question_id = str(record.get("question_id", "")).removesuffix(f"_{record['try']}")
    return str(record["video"]), str(record["type"]), question_id


def score(records: Sequence[dict], circular: bool = True, tries: int = 4) -> dict[str, float]:
    """Accuracy (%) per subtype (e.g. ``ret_edit1``), per task (``ret``, ``ord``, ``cnt``) and ``overall``.

    Args:
        records: one per answered try, with ``video``, ``type``, ``try``, ``correct`` (bool) and
            optionally ``question_id``.
        circular: apply the all-tries-right rule; False scores every record on its own (non-circular).
        tries: tries a question needs (circular only); missing tries count as wrong.
    """
    units = _units(records, circular, tries)
    result = {type_: 100.0 * float(group.mean()) for type_, group in units.groupby("type")["correct"]}
    tasks = {}
    for task in TASKS:
        subtypes = [value for type_, value in result.items() if type_.split("_")[0] == task]
        if subtypes:
            tasks[task] = float(np.mean(subtypes))
    result.update(tasks)
    result["overall"] = float(np.mean(list(tasks.values()))) if tasks else float("nan")
    return result


def depth_length_table(records: Sequence[dict], depth_bins: int | Sequence[float] = 5,
                       length_bins: Sequence[float] | None = None, circular: bool = True,
                       tries: int = 4) -> pd.DataFrame:
    """Accuracy (%) by needle depth bin (rows) x video length (columns, seconds), NaN where empty.

    Args:
        records: as for ``score``, plus ``depth`` (fraction) and ``length`` (seconds); without
            ``depth``, the mean ``needle_time`` over ``length`` stands in (real VNBench records).
        depth_bins: a number of equal bins over [0, 1], or bin edges.
        length_bins: bin edges in seconds; None = one column per distinct length.
    """
    units = _units(records, circular, tries)
    edges = np.linspace(0.0, 1.0, depth_bins + 1) if isinstance(depth_bins, int) else list(depth_bins)
    units["depth"] = pd.cut(units["depth"], edges, include_lowest=True)
    if length_bins is not None:
        units["length"] = pd.cut(units["length"], list(length_bins), include_lowest=True)
    table = units.pivot_table(index="depth", columns="length", values="correct", aggfunc="mean",
                              observed=False, dropna=False)
    return table.astype(float) * 100.0


def _units(records: Sequence[dict], circular: bool, tries: int) -> pd.DataFrame:
    """One row per scored unit (a question when ``circular``, else a record): type, correct, depth, length."""
    if not records:
        raise ValueError("no records to score: run the videoniah task first")
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for record in records:
        groups.setdefault(question_key(record), []).append(record)
    rows = []
    for members in groups.values() if circular else [[record] for record in records]:
        first = members[0]
        right = all(bool(m["correct"]) for m in members)
        if circular:
            right = right and len({m["try"] for m in members}) >= tries
        rows.append({"type": str(first["type"]), "correct": float(right), "depth": _depth(first),
                     "length": first.get("length", np.nan)})
    return pd.DataFrame(rows)


def _depth(record: dict) -> float:
    if "depth" in record:
        return float(record["depth"])
    if record.get("needle_time") and record.get("length"):
        return float(np.mean(record["needle_time"])) / float(record["length"])
    return float("nan")
