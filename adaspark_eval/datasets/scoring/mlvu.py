"""MLVU (dev) scoring rules on sample records.

``lmms``: lmms-eval's ``mlvu_dev`` task functions (``extract_mcq_answer`` reads the letter); M-Avg
divides the sum of the task-type accuracies by 7 always, so a ``--limit`` run that misses a type is
pulled towards 0.

``official``: ``check_ans`` of MLVU's ``choice_bench.py``, re-implemented from its behaviour: the
choice is the one character before the first ``)`` of the output; an output with no ``)`` must equal
the gold letter as a whole, nothing stripped. M-Avg is the mean of the task-type accuracies present.

Records need ``answer`` (the gold letter) and ``category.task_type``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adaspark_eval.datasets.scoring.records import Record, mean, percent, prediction, present, require

FIELDS = ("answer", "category.task_type")


def official_text(text: str) -> str:
    """What ``check_ans`` compares with the gold letter: the character just before the first ``)``, else
    the whole output untouched (so ``B.``, ``B\\n`` and ``The answer is B`` never equal ``B``)."""
    if ")" in text:
        cut = text.index(")")
        # The released slice is text[cut - 1:cut]: with ")" first, that is text[-1:0], the empty string,
        # which never equals a letter, so ")B" is wrong.
        return text[cut - 1:cut] if cut > 0 else ""
    return text


def official_choice(text: str) -> str | None:
    """The option ``check_ans`` reads: ``official_text`` when it is one visible character (the only
    text that can equal a gold letter; a lowercase letter stays lowercase and is wrong), else None."""
    compared = official_text(text)
    return compared if len(compared) == 1 and not compared.isspace() else None


def lmms_choice(text: str) -> str | None:
    """The letter lmms-eval's ``mlvu_dev`` task reads from ``text``, None when it reads none."""
    from lmms_eval.tasks.mlvu.utils import extract_characters_regex

    return extract_characters_regex(text) or None


def lmms_scores(records: Sequence[Record]) -> dict[str, float]:
    """``m_avg`` as lmms-eval computes it (sum of the seven types' accuracies / 7, a type without
    samples counting 0) and each type's accuracy, over ``records``."""
    from lmms_eval.tasks.mlvu.utils import mlvu_aggregate_results_dev

    from adaspark_eval.datasets.scoring.videomme import quiet_lmms_log

    require("mlvu_dev", "lmms", records, FIELDS)
    if not records:
        return {}
    items = [{"task_type": r["category"]["task_type"], "pred_answer": lmms_choice(prediction(r)) or "",
              "answer": str(r["answer"])} for r in records]
    with quiet_lmms_log():
        out = {"m_avg": float(mlvu_aggregate_results_dev(items))}
    return present(out | _per_type(records, lmms_choice))


def official_scores(records: Sequence[Record]) -> dict[str, float]:
    """``m_avg`` as MLVU's evaluator computes it (the mean over the task types present) and each type's
    accuracy, over ``records``."""
    require("mlvu_dev", "official", records, FIELDS)
    per_type = _per_type(records, official_choice)
    return present({"m_avg": mean(per_type.values()), **per_type} if per_type else {})


def lmms_group(records: Sequence[Record]) -> float:
    """Percent right of ``records`` by lmms-eval's parser (a category cell of a report)."""
    return _accuracy(records, lmms_choice)


def official_group(records: Sequence[Record]) -> float:
    """Percent right of ``records`` by ``check_ans`` (a category cell of a report)."""
    return _accuracy(records, official_choice)


def _per_type(records: Sequence[Record], choice: Callable[[str], str | None]) -> dict[str, float]:
    types = dict.fromkeys(str(r["category"]["task_type"]) for r in records)
    return {t: _accuracy([r for r in records if str(r["category"]["task_type"]) == t], choice) for t in types}


def _accuracy(records: Sequence[Record], choice: Callable[[str], str | None]) -> float:
    require("mlvu_dev", "scoring", records, ("answer",))
    right = [choice(prediction(r)) == str(r["answer"]) for r in records]
    return percent(sum(right), len(right))
