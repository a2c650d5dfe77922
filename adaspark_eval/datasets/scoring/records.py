"""What every scoring rule shares: reading fields out of sample records and turning counts into percents.

A record is one line of a run's ``samples.jsonl`` (``results.schema.SampleRecord``): the raw
``prediction`` (None when the sample failed), the gold ``answer`` (an option letter), ``category``
and the benchmark's own fields (``niah`` for VideoNIAH). Field names below are dotted paths into it,
e.g. ``category.task_type``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

Record = dict[str, Any]


class RecordsUnscorable(ValueError):
    """Records lack a field a rule reads; the message names the field, a sample and what to do."""


def get_field(record: Record, path: str) -> Any:
    """The value at dotted ``path`` of ``record`` (``"category.domain"``), None when absent."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def require(benchmark: str, rule: str, records: Iterable[Record], fields: Sequence[str]) -> None:
    """Raise ``RecordsUnscorable`` naming the first of ``fields`` some record lacks (None counts as absent)."""
    for record in records:
        for path in fields:
            if get_field(record, path) is None:
                raise RecordsUnscorable(
                    f"{benchmark} record {record.get('sample_id')!r} has no {path}, which the {rule} rule reads: "
                    "these records were written before the harness stored it; rerun the task to rescore them")


def prediction(record: Record) -> str:
    """The raw output; a failed sample (``prediction`` None) answers the empty string, as in the run,
    where lmms-eval is given ``""`` for it."""
    text = record.get("prediction")
    return "" if text is None else str(text)


def percent(right: float, total: float) -> float:
    """``100 * right / total``; NaN when ``total`` is 0."""
    return 100.0 * right / total if total else math.nan


def mean(values: Iterable[float]) -> float:
    """Mean of ``values``; NaN when empty."""
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def present(scores: dict[str, float]) -> dict[str, float]:
    """``scores`` without its NaN entries (metrics no sample fell in), as summaries keep them."""
    return {name: float(value) for name, value in scores.items() if not math.isnan(value)}
