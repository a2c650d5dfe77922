"""One object for every AdaSpark knob of the method (``docs/method.md``).

The config is a frozen dataclass: validated once at construction, hashable, and serialisable to a
flat dict (the form used by CLI flags, lmms-eval ``model_args`` and result keys).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_type_hints

Select = Literal["token", "cube"]
TextQueries = Literal["dense", "sparse"]
TextKeys = Literal["all", "sparse"]
FfnGroup = Literal["cube", "grid"]
FfnScore = Literal["l1", "softmax"]
Compensation = Literal["mean", "none"]
Backend = Literal["auto", "triton", "reference", "fa4"]
AttnImpl = Literal["sdpa", "fa4"]


class ConfigError(ValueError):
    """A knob holds a value the method does not define; the message names the knob and the fix."""


@dataclass(frozen=True)
class AdaSparkConfig:
    """Every AdaSpark knob. Defaults are the paper's settings as docs/method.md reads them.

    ``p`` drives both modules unless ``p_attn`` / ``p_ffn`` override it. ``fixed_ratio`` replaces
    top-p by "keep this fraction" in both modules (the paper's ablation). ``cube`` is
    ``(cube_t, cube_h, cube_w)`` in LLM tokens. ``backend`` picks the Triton kernels (``auto``: for CUDA
    tensors), flash-attn-4's block-sparse kernels (``fa4``, docs/kernels.md) or the reference path; like
    ``query_chunk`` it is left out of ``key()``, since all compute the same method (the kernels to bf16
    rounding). ``attn_impl`` is the dense attention kernel (``sdpa``, the stock model's, or ``fa4``): it
    changes the dense numerics and the dense baseline's speed, so it is part of ``key()`` (left out at
    ``sdpa``, so keys from before the knob stay valid).
    """

    p: float = 0.8
    p_attn: float | None = None
    p_ffn: float | None = None
    cube: tuple[int, int, int] = (4, 4, 4)
    select: Select = "token"
    text_queries: TextQueries = "dense"
    text_keys: TextKeys = "all"
    ffn_group: FfnGroup = "cube"
    ffn_score: FfnScore = "l1"
    ffn_tau: float = 1.0
    compensation: Compensation = "mean"
    fixed_ratio: float | None = None
    dense_layers: tuple[int, ...] = ()
    sparse_decode: bool = False
    attention: bool = True
    ffn: bool = True
    query_chunk: int = field(default=1024, compare=False)
    backend: Backend = field(default="auto", compare=False)
    attn_impl: AttnImpl = "sdpa"

    def __post_init__(self) -> None:
        for name in ("p", "p_attn", "p_ffn", "fixed_ratio"):
            value = getattr(self, name)
            if value is not None and not (0.0 < float(value) <= 1.0):
                raise ConfigError(f"{name}={value} is outside (0, 1]: pass a value such as {name}=0.8")
        if len(self.cube) != 3 or any(int(s) < 1 for s in self.cube):
            raise ConfigError(f"cube={self.cube} needs three sides >= 1 (t, h, w): pass e.g. cube=4x4x4")
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            choices = get_args(hints[f.name])
            if choices and all(isinstance(c, str) for c in choices) and getattr(self, f.name) not in choices:
                raise ConfigError(
                    f"{f.name}={getattr(self, f.name)!r} is not one of {', '.join(choices)}: pass one of those"
                )
        if self.ffn_tau <= 0:
            raise ConfigError(f"ffn_tau={self.ffn_tau} must be > 0: pass e.g. ffn_tau=1.0")
        if any(int(i) < 0 for i in self.dense_layers):
            raise ConfigError(f"dense_layers={self.dense_layers} holds a negative index: pass layer numbers >= 0")
        if self.query_chunk < 1:
            raise ConfigError(f"query_chunk={self.query_chunk} must be >= 1")

    @property
    def attn_p(self) -> float:
        """Threshold of AdaS-Attn."""
        return self.p if self.p_attn is None else self.p_attn

    @property
    def ffn_p(self) -> float:
        """Threshold of AdaS-FFN."""
        return self.p if self.p_ffn is None else self.p_ffn

    @property
    def cube_volume(self) -> int:
        """Tokens in a full cube."""
        t, h, w = self.cube
        return t * h * w

    def replace(self, **changes: Any) -> AdaSparkConfig:
        """A copy with ``changes`` applied (values may be strings, as from a CLI)."""
        return AdaSparkConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready flat dict: tuples become lists."""
        out = dataclasses.asdict(self)
        out["cube"] = list(self.cube)
        out["dense_layers"] = list(self.dense_layers)
        return out

    def key(self) -> str:
        """Short stable hash of the settings that change results (for result keys): every knob but those
        declared ``compare=False`` (``RESULT_NEUTRAL``)."""
        return short_hash({k: v for k, v in self.to_dict().items()
                           if k not in RESULT_NEUTRAL and KEY_DEFAULTS.get(k, object()) != v})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AdaSparkConfig:
        """Build from a dict whose values may be strings (``"0.8"``, ``"4x4x4"``, ``"0,1"``, ``"none"``).

        Unknown names raise ``ConfigError`` listing the known knobs.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown AdaSpark knob(s) {unknown}: known knobs are {sorted(known)}")
        return cls(**{name: _parse(name, value) for name, value in values.items()})


RESULT_NEUTRAL: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AdaSparkConfig) if not f.compare)
"""Knobs that change how, not what, is computed (memory, kernels): left out of ``key()`` and of labels."""

KEY_DEFAULTS: dict[str, Any] = {"attn_impl": "sdpa"}
"""Knobs added after results were keyed: left out of ``key()`` while at this value, so older keys stay valid."""


def short_hash(payload: Any, length: int = 12) -> str:
    """The first ``length`` hex digits of the SHA-1 of ``payload`` as sorted JSON (text is hashed as is):
    the one hash behind every key of the harness (configs, methods, run folders, sweeps)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def parse_bool(value: Any) -> bool:
    """A yes/no setting given as a bool or as text (``1/true/yes/on``, ``0/false/no/off``); ValueError else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


def _parse(name: str, value: Any) -> Any:
    """Coerce one knob value from its CLI/string form."""
    if not isinstance(value, str):
        if name == "cube":
            return tuple(int(v) for v in value)
        if name == "dense_layers":
            return tuple(int(v) for v in value)
        return value
    text = value.strip()
    try:
        if name in ("p", "ffn_tau"):
            return float(text)
        if name in ("p_attn", "p_ffn", "fixed_ratio"):
            return None if text.lower() in ("", "none") else float(text)
        if name == "cube":
            sides = [int(s) for s in text.lower().replace(",", "x").split("x")]
            return tuple(sides * 3) if len(sides) == 1 else tuple(sides)
        if name == "dense_layers":
            return tuple(int(s) for s in text.replace(";", ",").split(",") if s.strip())
        if name in ("sparse_decode", "attention", "ffn"):
            return parse_bool(text)
        if name == "query_chunk":
            return int(text)
    except ValueError:
        raise ConfigError(f"{name}={value!r} cannot be read: see `adaspark-eval run --help` for its form") from None
    return text
