"""Scoring rules by name, per benchmark: pure functions from sample records (``samples.jsonl`` lines) to
scores in percent, so any results folder can be rescored without a model.

Two rules per benchmark (``RULES``):

- ``lmms``: what lmms-eval computes (its ``videomme`` / ``mlvu_dev`` task functions). lmms-eval has no
  VNBench task; for VideoNIAH this name reaches the harness's own ``lenient`` rule.
- ``official``: the benchmark's released evaluator, quirks included (``eval_your_results.py``,
  ``choice_bench.py``, VNBench ``eval.py``).

``DEFAULT_RULES`` is what reports show unless told otherwise (docs/scoring.md says why), except for the
models of ``OPTION_NAME_MODELS`` (``default_rule``).

    scores = score_records("mlvu_dev", records, "official")   # {"m_avg": ..., "count": ..., ...}
    rule = get_rule("videoniah", "lmms")                       # rule.name == "lenient"
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adaspark_eval.datasets.scoring import mlvu, videomme, videoniah
from adaspark_eval.datasets.scoring.records import Record, RecordsUnscorable, get_field, prediction

RULES = ("lmms", "official")
DEFAULT_RULES = {"videomme": "lmms", "mlvu_dev": "lmms", "videoniah": "official"}
ALIASES = {("videoniah", "lmms"): "lenient"}  # (benchmark, rule asked) -> the rule's own name there
OPTION_NAME_MODELS = ("niah-small",)
"""Models trained to answer with the option's text rather than its letter (the embedded model,
docs/embedded-model.md): VNBench's ``eval.py`` reads no letter from their answers, so their default is
the ``lmms`` rule (``lenient`` for VideoNIAH), which reads an answer naming one option's text."""


class UnknownRule(ValueError):
    """A scoring rule or benchmark with no rule; the message lists the known ones."""


@dataclass(frozen=True)
class Rule:
    """One scoring rule of one benchmark.

    Attributes:
        benchmark: the benchmark's name; name: the rule's own name there (``lmms``, ``official``, ``lenient``).
        choice: record -> the option the rule reads from its ``prediction`` (None: none read).
        scores: records -> ``{metric: percent}`` under the benchmark's metric names, metrics no record
            falls in left out.
        group: records -> the one score of a group of records (a category cell of a report).
        fields: record fields (dotted paths) the rule reads.
    """

    benchmark: str
    name: str
    choice: Callable[[Record], str | None]
    scores: Callable[[Sequence[Record]], dict[str, float]]
    group: Callable[[Sequence[Record]], float]
    fields: tuple[str, ...]


def _on_prediction(read: Callable[[str], str | None]) -> Callable[[Record], str | None]:
    return lambda record: read(prediction(record))


_RULES: dict[tuple[str, str], Rule] = {
    ("videomme", "lmms"): Rule("videomme", "lmms", _on_prediction(videomme.lmms_choice), videomme.lmms_scores,
                               videomme.lmms_group, videomme.LMMS_FIELDS),
    ("videomme", "official"): Rule("videomme", "official", _on_prediction(videomme.official_choice),
                                   videomme.official_scores, videomme.official_group, videomme.OFFICIAL_FIELDS),
    ("mlvu_dev", "lmms"): Rule("mlvu_dev", "lmms", _on_prediction(mlvu.lmms_choice), mlvu.lmms_scores,
                               mlvu.lmms_group, mlvu.FIELDS),
    ("mlvu_dev", "official"): Rule("mlvu_dev", "official", _on_prediction(mlvu.official_choice),
                                   mlvu.official_scores, mlvu.official_group, mlvu.FIELDS),
    ("videoniah", "lenient"): Rule("videoniah", "lenient", videoniah.lenient_choice, videoniah.lenient_scores,
                                   videoniah.lenient_group, videoniah.FIELDS),
    ("videoniah", "official"): Rule("videoniah", "official", _on_prediction(videoniah.official_choice),
                                    videoniah.official_scores, videoniah.official_group, videoniah.FIELDS),
}


def default_rule(benchmark: str, model: str | None = None) -> str:
    """The rule reports show for ``benchmark`` unless told otherwise: ``DEFAULT_RULES``, or ``lmms`` for the
    answers of a model of ``OPTION_NAME_MODELS``."""
    return "lmms" if model in OPTION_NAME_MODELS else DEFAULT_RULES.get(benchmark, "lmms")


def rule_name(benchmark: str, rule: str | None = None, model: str | None = None) -> str:
    """The name ``rule`` (default: ``default_rule`` of ``benchmark`` and ``model``) has for ``benchmark``:
    ``lmms`` is ``lenient`` for VideoNIAH."""
    rule = rule or default_rule(benchmark, model)
    return ALIASES.get((benchmark, rule), rule)


def get_rule(benchmark: str, rule: str | None = None) -> Rule:
    """The rule ``rule`` (``lmms``, ``official``, or a benchmark's own name such as ``lenient``; default:
    the benchmark's default) of ``benchmark``; ``UnknownRule`` listing the choices otherwise."""
    found = _RULES.get((benchmark, rule_name(benchmark, rule)))
    if found is None:
        benchmarks = sorted({b for b, _ in _RULES})
        if benchmark not in benchmarks:
            raise UnknownRule(f"no scoring rules for {benchmark!r}: rules exist for {', '.join(benchmarks)}")
        names = [*RULES, *sorted({n for (b, n) in _RULES if b == benchmark} - set(RULES))]
        raise UnknownRule(f"unknown scoring rule {rule!r} for {benchmark}: choose from {', '.join(names)}")
    return found


def has_rules(benchmark: str) -> bool:
    """Whether ``benchmark`` has scoring rules (the three benchmarks the harness knows)."""
    return any(b == benchmark for b, _ in _RULES)


def score_records(benchmark: str, records: Sequence[Record], rule: str | None = None) -> dict[str, float]:
    """``{metric: percent}`` of ``records`` (all of ``benchmark``) under ``rule`` (default: the
    benchmark's default); ``RecordsUnscorable`` naming a field the records lack."""
    return get_rule(benchmark, rule).scores(records)


__all__ = ["ALIASES", "DEFAULT_RULES", "OPTION_NAME_MODELS", "RULES", "RecordsUnscorable", "Rule", "UnknownRule", "default_rule",
           "get_field", "get_rule", "has_rules", "rule_name", "score_records"]
