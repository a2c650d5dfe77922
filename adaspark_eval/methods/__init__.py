"""Methods of the harness by name (``--method``, model arg ``method=``): AdaSpark and the peers a user
would pick instead, each run on the AdaSpark runtime and counted by the same FLOP counter.

    method = make_method("fastv", {"fastv_keep": "0.5"})
    sparse = attach(model, method, AdaSparkConfig())   # SparseRuntime.attach with the method's knobs and rule
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from torch import nn

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.methods.adaspark import AdaSparkMethod
from adaspark_eval.methods.base import Method
from adaspark_eval.methods.dense import Dense
from adaspark_eval.methods.dycoke import DyCoke
from adaspark_eval.methods.fastv import FastV
from adaspark_eval.methods.flexprefill import FlexPrefill
from adaspark_eval.methods.frames import Frames
from adaspark_eval.methods.topk import TopK
from adaspark_eval.methods.visionzip import VisionZip
from adaspark_eval.methods.window import Window
from adaspark_eval.methods.xattention import XAttention
from adaspark_eval.sparse.runtime import SparseRuntime

METHODS: dict[str, type[Method]] = {m.name: m for m in (AdaSparkMethod, Dense, TopK, Window, FastV, Frames)}
METHODS.update({m.name: m for m in (XAttention, FlexPrefill)})  # sparse prefill attention peers (issue 22)
METHODS.update({m.name: m for m in (VisionZip, DyCoke)})  # video token compression peers (issue 22)
SETTINGS: dict[str, str] = {f.name: m.name for m in METHODS.values() for f in dataclasses.fields(m)}
"""Setting name -> the method it belongs to (names are unique across methods)."""


def make_method(name: str, settings: dict[str, Any] | None = None) -> Method:
    """The method ``name`` with ``settings`` (values may be text); ``ConfigError`` naming the fix for an
    unknown name or a setting of another method."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}: choose from {', '.join(METHODS)}")
    for setting in settings or {}:
        if SETTINGS.get(setting) != name:
            owner = SETTINGS.get(setting)
            raise ConfigError(f"{setting} is a setting of method {owner}, not {name}: pass --method {owner} or drop it"
                              if owner else f"unknown setting {setting!r} of method {name}")
    return METHODS[name].from_dict(settings or {})


def method_grid(name: str, settings: dict[str, Any] | None = None) -> list[tuple[str, Method]]:
    """The methods of ``settings`` whose text values may be comma-separated lists (``"0.2,0.4"``), one per
    point of their product, each with the label of its swept values (``visionzip_keep=0.2``; "" when none)."""
    axes = {k: [x.strip() for x in v.split(",")] if isinstance(v, str) else [v] for k, v in (settings or {}).items()}
    swept = [k for k, values in axes.items() if len(values) > 1]
    points = []
    for values in itertools.product(*axes.values()):
        chosen = dict(zip(axes, values))
        points.append((",".join(f"{k}={chosen[k]}" for k in swept), make_method(name, chosen)))
    return points


def split_settings(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``values`` split into method settings and the rest (AdaSpark knobs, model args)."""
    return ({k: v for k, v in values.items() if k in SETTINGS}, {k: v for k, v in values.items() if k not in SETTINGS})


def attach(model: nn.Module, method: Method, knobs: AdaSparkConfig | None = None) -> SparseRuntime:
    """``SparseRuntime.attach`` with ``method``'s knobs and rule; ``detach()`` gives the stock model back."""
    sparse = SparseRuntime.attach(model, method.config(knobs or AdaSparkConfig()))
    try:
        sparse.rule = method.rule(sparse)
    except ConfigError:
        sparse.detach()
        raise
    return sparse
