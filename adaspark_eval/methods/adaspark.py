"""``adaspark``: the method of this project (docs/method.md), top-p over cubes and tokens, as its knobs say."""

from __future__ import annotations

from dataclasses import dataclass

from adaspark_eval.methods.base import Method


@dataclass(frozen=True)
class AdaSparkMethod(Method):
    """AdaSpark itself: every knob as given, no rule of its own."""

    name = "adaspark"
    summary = "AdaSpark: top-p cubes (attention) and tokens (FFN), knobs as given"
