"""Text forms of the generator knobs (as typed on the command line) turned into values."""

from __future__ import annotations

import re

import numpy as np

from adaspark_eval.data.niah.questions import ALL_TYPES, OFFICIAL_TYPES, TASKS

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_seconds(text: str) -> float:
    """``"90"``, ``"90s"``, ``"10m"``, ``"1.5h"`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", text.lower())
    if not match:
        raise ValueError(f"length {text!r} is not a duration: give seconds like 60, or 90s, 10m, 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_lengths(text: str) -> tuple[float, ...]:
    """``"60"`` or ``"60,10m,1h"`` -> lengths in seconds."""
    return tuple(parse_seconds(part) for part in text.split(","))


def parse_depths(text: str) -> tuple[float, ...]:
    """``"0.5"``, ``"0,0.5,1"`` or ``"grid:5"`` (5 depths evenly from 0 to 1) -> fractions in [0, 1]."""
    hint = "give a fraction like 0.5, a list like 0,0.5,1, or grid:5"
    grid = re.fullmatch(r"\s*grid:(\d+)\s*", text)
    try:
        depths = (tuple(float(d) for d in np.linspace(0.0, 1.0, int(grid.group(1)))) if grid
                  else tuple(float(part) for part in text.split(",")))
    except ValueError:
        raise ValueError(f"depth {text!r} is not understood: {hint}") from None
    if not depths or not all(0.0 <= d <= 1.0 for d in depths):
        raise ValueError(f"depth {text!r} must lie in [0, 1] (a fraction of the video): {hint}")
    return depths


def parse_resolution(text: str) -> tuple[int, int]:
    """``"224x224"`` (W x H) -> (H, W)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"resolution {text!r} is not WxH: give e.g. 224x224 or 640x360")
    return int(match.group(2)), int(match.group(1))


def parse_types(text: str) -> tuple[str, ...]:
    """``"official"`` (the 9 VNBench types), ``"all"``, a task (``"ret"``) or a comma list of types."""
    chosen: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "official":
            chosen += OFFICIAL_TYPES
        elif part == "all":
            chosen += ALL_TYPES
        elif part in TASKS:
            chosen += [t for t in ALL_TYPES if t.startswith(part + "_")]
        elif part in ALL_TYPES:
            chosen.append(part)
        else:
            raise ValueError(f"unknown type {part!r}: choose official, all, ret, ord, cnt or from "
                             f"{', '.join(ALL_TYPES)}")
    return tuple(dict.fromkeys(chosen))
