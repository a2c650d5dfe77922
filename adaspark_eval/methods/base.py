"""The interface every method of the harness shares.

A method is a frozen dataclass whose fields are its settings (validated at construction, read from
text by ``from_dict``, hashed by ``key``). It runs on the AdaSpark runtime and changes only what it
overrides of four hooks, each a no-op here:

- ``config``: the AdaSpark knobs the runtime runs with (``dense`` turns both modules off);
- ``rule``: a ``LayerRule`` the runtime consults in every layer (``window``, ``fastv``);
- ``video``: how videos are read (``frames``);
- ``count``: the sample's FLOPs from the runtime's records (``frames`` counts dense against the full
  frame count).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, get_type_hints

from adaspark_eval.config import AdaSparkConfig, ConfigError, short_hash
from adaspark_eval.flops.counter import GridsLike, count_sample
from adaspark_eval.flops.dims import ModelDims
from adaspark_eval.flops.sample import SampleFlops
from adaspark_eval.sparse.stats import ForwardRecord

if TYPE_CHECKING:
    from adaspark_eval.data.video import VideoSettings
    from adaspark_eval.sparse.runtime import SparseRuntime, LayerRule


@dataclass(frozen=True)
class Method:
    """A method: ``name`` (the ``--method`` value), ``summary`` (one line for `--help` and docs/peers.md), and its
    settings as dataclass fields, each with a default."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: Whether the method leaves the decode steps as the runtime's config runs them (``--decode graph`` replays
    #: dense ones); a method whose rule acts at decode sets False.
    dense_decode: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the setting and the fix when a setting is out of range."""

    def config(self, knobs: AdaSparkConfig) -> AdaSparkConfig:
        """The AdaSpark knobs the runtime runs with, from the knobs given (idempotent)."""
        return knobs

    def rule(self, runtime: SparseRuntime) -> LayerRule | None:
        """The per-layer rule ``runtime`` consults (``runtime.rule``), or None."""
        return None

    def video(self, video: VideoSettings, dims: ModelDims) -> VideoSettings:
        """How videos are read for this method, from the run's settings ``video``."""
        return video

    def frames_for(self, video: VideoSettings, dims: ModelDims) -> Callable[[int], int] | None:
        """The frame count to read from a file of N frames (a picklable callable, run where videos are
        decoded), when it depends on the file; None: ``self.video``'s count."""
        return None

    def count(self, dims: ModelDims, records: Sequence[ForwardRecord], *, video_grid_thw: GridsLike,
              image_grid_thw: GridsLike, video: VideoSettings, file_frames: int | None = None) -> SampleFlops:
        """FLOPs of one sample (batch of 1) from the runtime's ``records``; ``video``: the run's settings
        (before ``self.video``); ``file_frames``: the video file's frame count, when ``frames_for`` read it."""
        return count_sample(dims, records, video_grid_thw=video_grid_thw, image_grid_thw=image_grid_thw)

    def settings(self) -> dict[str, Any]:
        """The settings by name (JSON-ready)."""
        return dataclasses.asdict(self)

    def describe(self, config: AdaSparkConfig) -> dict[str, Any]:
        """What reports label a run by (its summary ``config``): the knobs run with, then the settings."""
        return {**config.to_dict(), **self.settings()}

    def key(self) -> str:
        """Short stable hash of the name and settings."""
        return short_hash({"method": self.name, **self.settings()})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Method:
        """Build from settings whose values may be text (``"2"``, ``"0.5"``), as from a CLI or model args."""
        hints = get_type_hints(cls)
        parsed = {}
        for name, value in values.items():
            kind = hints[name]
            try:
                parsed[name] = kind(value) if kind in (int, float) else value
            except ValueError:
                raise ConfigError(f"{name}={value!r} is not a number: pass e.g. {name}="
                                  f"{getattr(cls, name)}") from None
        return cls(**parsed)


def fraction(name: str, value: float) -> None:
    """Check a setting in (0, 1]."""
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"{name}={value} is outside (0, 1]: pass e.g. {name}=0.5")


def dense_knobs(knobs: AdaSparkConfig, cube: tuple[int, int, int] = AdaSparkConfig.cube) -> AdaSparkConfig:
    """AdaSpark with both modules off (the stock numerics) on cubes ``cube``, keeping of ``knobs`` only
    those that do not change results (memory, kernels) and the dense kernel ``attn_impl``."""
    return AdaSparkConfig(cube=cube, attention=False, ffn=False, query_chunk=knobs.query_chunk,
                          backend=knobs.backend, attn_impl=knobs.attn_impl)
