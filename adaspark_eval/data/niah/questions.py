"""Questions about needles: retrieval, ordering, counting; four options; circular tries.

A VNBench type is ``<task>_<kind>``: task ``ret`` (what was the needle), ``ord`` (in what order did
the needles appear) or ``cnt`` (how many times did the needle appear), kind one of ``needles.KINDS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adaspark_eval.data.niah.needles import KINDS, Needle, labels

TASKS = ("ret", "ord", "cnt")
OFFICIAL_TYPES = ("ret_edit1", "ret_insert1", "ret_insert2", "ord_edit1", "ord_insert1", "ord_insert2",
                  "cnt_edit1", "cnt_edit2", "cnt_insert1")
ALL_TYPES = tuple(f"{task}_{kind}" for task in TASKS for kind in KINDS)
LETTERS = "ABCD"

_RETRIEVAL = {
    "edit1": "A subtitle appears in the video for a moment. What word does it show?",
    "edit2": "An object is shown on a panel in a corner of the video for a moment. What is it?",
    "insert1": "An image of an object is inserted into the video. What object does it show?",
    "insert2": "A short clip of a moving object is inserted into the video. What object moves in it?",
}
_ORDERING = {
    "edit1": "Several subtitles appear in the video one after another. In what order do they appear?",
    "edit2": "Several objects are shown on a corner panel of the video one after another. "
             "In what order are they shown?",
    "insert1": "Several images of objects are inserted into the video. In what order do they appear?",
    "insert2": "Several short clips of moving objects are inserted into the video. "
               "In what order do they appear?",
}
_COUNTING = {
    "edit1": "How many times does the subtitle '{}' appear in the video?",
    "edit2": "How many times is {} shown on a corner panel of the video?",
    "insert1": "How many times is an image of {} inserted into the video?",
    "insert2": "How many times is a clip of {} moving across the screen inserted into the video?",
}


@dataclass(frozen=True)
class Question:
    """A question, its needles in order of appearance, the answer and three wrong answers."""

    text: str
    needles: tuple[Needle, ...]
    answer: str
    distractors: tuple[str, str, str]


def split_type(type_: str) -> tuple[str, str]:
    """``"ret_edit1"`` -> ``("ret", "edit1")``; a one-line error naming the valid types otherwise."""
    if type_ not in ALL_TYPES:
        raise ValueError(f"unknown type {type_!r}: choose from {', '.join(ALL_TYPES)}")
    task, kind = type_.split("_")
    return task, kind


def ask(type_: str, rng: np.random.Generator, needles: int) -> Question:
    """A question of ``type_`` with its needles; ``needles`` is the count for ordering and the largest
    possible answer for counting (retrieval always hides one needle)."""
    task, kind = split_type(type_)
    if task == "ret":
        gold, *wrong = labels(kind, rng, 4)
        return Question(_RETRIEVAL[kind], (Needle(kind, gold),), gold, tuple(wrong))
    if task == "ord":
        if needles < 3:
            raise ValueError(f"ordering needs at least 3 needles for 4 distinct orders, got {needles}: "
                             "raise --needles")
        items = labels(kind, rng, needles)
        orders = [tuple(items)]
        while len(orders) < 4:
            order = tuple(items[i] for i in rng.permutation(needles))
            if order not in orders:
                orders.append(order)
        gold, *wrong = (" -> ".join(order) for order in orders)
        return Question(_ORDERING[kind], tuple(Needle(kind, item) for item in items), gold, tuple(wrong))
    (item,) = labels(kind, rng, 1)
    count = int(rng.integers(1, needles + 1))
    candidates = [c for c in range(max(1, count - 3), count + 4) if c != count]
    wrong = sorted(int(c) for c in rng.choice(candidates, size=3, replace=False))
    subject = item if kind == "edit1" else _with_article(item)
    return Question(_COUNTING[kind].format(subject), (Needle(kind, item),) * count, str(count),
                    tuple(str(c) for c in wrong))


def rotations(question: Question, rng: np.random.Generator, tries: int) -> list[tuple[list[str], int]]:
    """Options and gold index for each of ``tries`` circular tries: the four answers are shuffled once,
    then try k rotates them by k places, so over four tries the gold visits every letter."""
    shuffled = [[question.answer, *question.distractors][i] for i in rng.permutation(4)]
    gold = shuffled.index(question.answer)
    return [(shuffled[k:] + shuffled[:k], (gold - k) % 4) for k in range(tries)]


def _with_article(label: str) -> str:
    return f"{'an' if label[0] in 'aeiou' else 'a'} {label}"
