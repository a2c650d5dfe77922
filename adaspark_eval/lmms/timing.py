"""Wall-clock latency of one ``generate`` call: up to the end of the prefill forward, and in all."""

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
        prefill_s: from entering the block to the end of the first ``module`` forward.
        total_s: from entering the block to leaving it.
    """

    def __init__(self, module: nn.Module, devices: Iterable[torch.device]) -> None:
        self.module = module
        self.gpus = sorted({device for device in devices if device.type == "cuda"}, key=str)
        self.prefill_s: float | None = None
        self.total_s: float | None = None
        self._start = 0.0
        self._handle: Any = None

    def _now(self) -> float:
        for gpu in self.gpus:
            torch.cuda.synchronize(gpu)
        return time.perf_counter()

    def _on_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.prefill_s is None:
            self.prefill_s = self._now() - self._start

    def __enter__(self) -> GenerationTimer:
        self._handle = self.module.register_forward_hook(self._on_forward)
        self._start = self._now()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.total_s = self._now() - self._start
        self._handle.remove()

    def as_dict(self) -> dict[str, float | None]:
        return {"prefill_s": self.prefill_s, "total_s": self.total_s}
