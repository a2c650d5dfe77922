"""Wall-clock latency of one ``generate`` call: the vision encoder, up to the end of the prefill forward,
and in all."""

from __future__ import annotations

import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import torch
from torch import nn


class GenerationTimer:
    """Times a ``generate`` call on a model whose first ``module`` forward is the prefill (vision encoder
    and LLM prefill), each later one a decode step. CUDA work on ``devices`` (every GPU the model spans) is
    synchronised before each reading.

    Attributes (seconds, after the ``with`` block):
        vision_s: the vision encoder (``module.visual``) of the prefill; None when it did not run (its
            output reused, as a sweep does after the first point).
        prefill_s: from entering the block to the end of the first ``module`` forward (vision included).
        total_s: from entering the block to leaving it.
    """

    def __init__(self, module: nn.Module, devices: Iterable[torch.device]) -> None:
        self.module = module
        self.gpus = sorted({device for device in devices if device.type == "cuda"}, key=str)
        self.vision_s: float | None = None
        self.prefill_s: float | None = None
        self.total_s: float | None = None
        self._start = self._vision_start = 0.0
        self._handles: list[Any] = []

    def _now(self) -> float:
        for gpu in self.gpus:
            torch.cuda.synchronize(gpu)
        return time.perf_counter()

    def _on_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.prefill_s is None:
            self.prefill_s = self._now() - self._start

    def _before_vision(self, module: nn.Module, args: Any) -> None:
        if self.vision_s is None:
            self._vision_start = self._now()

    def _after_vision(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.vision_s is None:
            self.vision_s = self._now() - self._vision_start

    def __enter__(self) -> GenerationTimer:
        self._handles = [self.module.register_forward_hook(self._on_forward)]
        visual = getattr(self.module, "visual", None)
        if visual is not None:
            self._handles += [visual.register_forward_pre_hook(self._before_vision),
                              visual.register_forward_hook(self._after_vision)]
        self._start = self._now()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.total_s = self._now() - self._start
        for handle in self._handles:
            handle.remove()

    def as_dict(self) -> dict[str, float | None]:
        return {"vision_s": self.vision_s, "prefill_s": self.prefill_s, "total_s": self.total_s}
