"""Names for run configs: a row label that tells runs apart, and a series name that groups a sweep."""

from __future__ import annotations

import dataclasses
from typing import Any

from adaspark_eval.config import RESULT_NEUTRAL, AdaSparkConfig
from adaspark_eval.methods import METHODS


def flat_knobs(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with list values as text (``cube`` -> ``"4x4x4"``, ``dense_layers`` -> ``"0,1"``),
    so every value is a hashable scalar that fits a table cell."""
    out = {}
    for name, value in config.items():
        if isinstance(value, list | tuple):
            value = ("x" if name == "cube" else ",").join(str(v) for v in value)
        out[name] = value
    return out


DEFAULT_KNOBS = flat_knobs(AdaSparkConfig().to_dict())
METHOD_DEFAULTS = {f.name: f.default for method in METHODS.values() for f in dataclasses.fields(method)}
"""Every method setting's default (setting names are unique across methods)."""


def changed_knobs(knobs: dict[str, Any]) -> dict[str, Any]:
    """The knobs and method settings of ``knobs`` (flat) that differ from their defaults; unknown names always
    count."""
    defaults = {**DEFAULT_KNOBS, **METHOD_DEFAULTS}
    return {name: value for name, value in knobs.items()
            if name not in RESULT_NEUTRAL and (name not in defaults or defaults[name] != value)}


def config_label(method: str, knobs: dict[str, Any]) -> str:
    """Row label of a run, e.g. ``dense``, ``adaspark p=0.8``, ``adaspark fixed_ratio=0.3``,
    ``adaspark p=0.8 cube=2x2x2``, ``dycoke dycoke_merge=0.5``: the method and every knob and method setting
    off its default (``p`` always, unless a fixed ratio replaces it). Dense runs ignore their knobs but the dense kernel (``dense attn_impl=fa4``), so
    that every speedup in a report says which dense kernel it is against."""
    if method == "dense":
        return " ".join(["dense", *([f"attn_impl={knobs['attn_impl']}"]
                                    if knobs.get("attn_impl", "sdpa") != "sdpa" else [])])
    changed = changed_knobs(knobs)
    changed.pop("p", None)
    if knobs.get("fixed_ratio") is None and "p" in knobs:
        changed = {"p": knobs["p"], **changed}
    return " ".join([method, *(f"{name}={value}" for name, value in changed.items())])


def series_name(method: str, knobs: dict[str, Any]) -> str:
    """Curve a run belongs to: its label without the swept amount (``p`` or the fixed ratio value).

    Peer methods (not ``adaspark``) make one curve each; AdaSpark runs with default knobs make the
    curve named ``adaspark``.
    """
    if method != "adaspark":
        return method
    changed = {name: value for name, value in changed_knobs(knobs).items() if name not in ("p", "fixed_ratio")}
    parts = [method, *(["fixed ratio"] if knobs.get("fixed_ratio") is not None else []),
             *(f"{name}={value}" for name, value in changed.items())]
    return " ".join(parts)
