"""Video-MME scoring rules on sample records.

``lmms``: lmms-eval's ``videomme`` task functions (``extract_mcq_answer`` reads the letter; every
sample counts, an output with no letter is wrong; ``overall`` is lmms-eval's aggregation).

``official``: the rule of ``eval_your_results.py`` in the Video-MME release, re-implemented from its
behaviour: a fixed list of answer prefixes is deleted from the stripped output, then the first capital
``A``-``D`` anywhere is the choice; an output with none is left out of every denominator (not counted
wrong). Scores: ``overall`` and each slice (duration, ``domain_*``, ``task_*``) are right / parsed.

Both rules report the same metric names as the lmms-eval task (``VideoMME.metrics``), for the slices
the records fall in. Records need ``answer`` and ``category.duration`` / ``domain`` /
``sub_category`` / ``task_type`` (lmms-eval's aggregation keys on all four).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from adaspark_eval.datasets.base import slug
from adaspark_eval.datasets.scoring.records import Record, get_field, percent, prediction, present, require

LMMS_FIELDS = ("answer", "category.duration", "category.domain", "category.sub_category", "category.task_type")
OFFICIAL_FIELDS = ("answer", "category.duration", "category.domain", "category.task_type")

# The released prefix list as Python reads it. Two commas are missing there, so Python joins the adjacent
# literals: "The best option is" + "The correct option is" and "Best answer:" + "Best option:" become one
# prefix each, which a real output never contains. So "The best option is C" keeps its prefix (and reads
# as C only because "The best option is" holds no capital A-D), and "Best option: (A)" keeps its prefix and
# reads as B, the B of "Best". Kept exactly so: this is the rule its published numbers follow.
OFFICIAL_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",  # two prefixes joined by the missing comma: never matches
    "Best answer:Best option:",                 # likewise
)
OFFICIAL_LETTERS = re.compile(r"[ABCD]")  # capitals only: "b" or "(c)" is not read


def official_choice(text: str) -> str | None:
    """The letter ``eval_your_results.py`` reads from ``text``, None when it reads none (left out)."""
    text = text.strip()  # only the ends, and only before the prefixes go
    for prefix in OFFICIAL_PREFIXES:
        text = text.replace(prefix, "")  # every occurrence, anywhere in the text, in list order
    # The script returns "" for an output of more than 10 words with no capital A-D before searching; the
    # search below finds none in such an output either, so the check changes nothing and is not repeated.
    match = OFFICIAL_LETTERS.search(text)  # the first capital A-D anywhere: "Answer: C" reads as A
    return match[0] if match else None


def lmms_choice(text: str) -> str | None:
    """The letter lmms-eval's ``videomme`` task reads from ``text``, None when it reads none."""
    from lmms_eval.tasks.videomme.utils import extract_characters_regex

    return extract_characters_regex(text) or None


def lmms_item(doc: dict[str, Any], text: str) -> dict[str, Any]:
    """lmms-eval's per-sample dict for ``text`` (``videomme_process_results``): ``pred_answer``, ``answer``,
    ``score`` (0/1), ``duration``, ``category`` (the domain), ``sub_category``, ``task_category``, ..."""
    from lmms_eval.tasks.videomme.utils import videomme_process_results

    return videomme_process_results(doc, [text])["videomme_perception_score"]


def lmms_overall(items: Sequence[dict[str, Any]]) -> float:
    """lmms-eval's ``overall`` over its per-sample dicts (``videomme_aggregate_results``), its log quiet."""
    from lmms_eval.tasks.videomme.utils import videomme_aggregate_results

    with quiet_lmms_log():
        return float(videomme_aggregate_results(list(items)))


@contextmanager
def quiet_lmms_log() -> Iterator[None]:
    """lmms-eval's aggregations log one line per slice through loguru; silence them for the block."""
    from loguru import logger

    logger.disable("lmms_eval")
    try:
        yield
    finally:
        logger.enable("lmms_eval")


def slices(records: Sequence[Record]) -> dict[str, tuple[str, str]]:
    """Metric -> (record field, value) for each duration, domain and task type the records hold."""
    out: dict[str, tuple[str, str]] = {}
    for path, name in (("category.duration", "{}"), ("category.domain", "domain_{}"),
                       ("category.task_type", "task_{}")):
        for value in dict.fromkeys(str(get_field(r, path)) for r in records):
            out[name.format(value if path == "category.duration" else slug(value))] = (path, value)
    return out


def lmms_scores(records: Sequence[Record]) -> dict[str, float]:
    """The lmms-eval task's metrics over ``records``: ``overall`` and each slice, percent right of all."""
    require("videomme", "lmms", records, LMMS_FIELDS)
    if not records:
        return {}
    items = [lmms_item(_doc(record), prediction(record)) for record in records]
    right = [item["score"] == 1.0 for item in items]
    out = {"overall": lmms_overall(items)}
    for metric, (path, value) in slices(records).items():
        chosen = [ok for record, ok in zip(records, right) if str(get_field(record, path)) == value]
        out[metric] = percent(sum(chosen), len(chosen))
    return present(out)


def lmms_group(records: Sequence[Record]) -> float:
    """Percent right of ``records`` by lmms-eval's parser (a category cell of a report)."""
    require("videomme", "lmms", records, ("answer",))
    right = [lmms_choice(prediction(r)) == str(r["answer"]) for r in records]
    return percent(sum(right), len(right))


def official_scores(records: Sequence[Record]) -> dict[str, float]:
    """``eval_your_results.py``'s numbers over ``records``: ``overall`` and each slice, right / parsed."""
    require("videomme", "official", records, OFFICIAL_FIELDS)
    if not records:
        return {}
    out = {"overall": official_group(records)}
    for metric, (path, value) in slices(records).items():
        out[metric] = official_group([r for r in records if str(get_field(r, path)) == value])
    return present(out)


def official_group(records: Sequence[Record]) -> float:
    """Right / parsed over ``records`` in percent. An unparsed output is left out of the denominator;
    a group with samples but none parsed scores 0 (the script prints 0 when nothing was answered);
    NaN without samples."""
    choices = [(official_choice(prediction(r)), str(r["answer"])) for r in records]
    answered = [choice == gold for choice, gold in choices if choice is not None]
    if records and not answered:
        return 0.0
    return percent(sum(answered), len(answered))  # the gold compared as it is, case-sensitively


def _doc(record: Record) -> dict[str, Any]:
    """The fields of the annotation row ``videomme_process_results`` reads, from a record."""
    category = record["category"]
    return {"question_id": record.get("sample_id"), "videoID": record.get("videoID", ""), "answer": record["answer"],
            "duration": category["duration"], "domain": category["domain"],
            "sub_category": category["sub_category"], "task_type": category["task_type"]}
