"""Work a sweep does once per sample instead of once per point: decoding and processing the video
(the model inputs) and the vision encoder's output, neither of which depends on the AdaSpark knobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

_ENCODERS = ("get_video_features", "get_image_features")


class SampleMemo:
    """Memo of the current sample's inputs and vision-encoder outputs; ``next_sample`` empties it.

    ``computed`` / ``reused`` count, per kind (``inputs``, ``get_video_features``, ...), the calls that
    ran and the calls answered from the memo.
    """

    def __init__(self) -> None:
        self._inputs: dict[Any, Any] = {}
        self._encoded: dict[tuple[str, int], Any] = {}
        self.computed: dict[str, int] = {}
        self.reused: dict[str, int] = {}

    def next_sample(self) -> None:
        self._inputs.clear()
        self._encoded.clear()

    def inputs(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()`` once per ``key`` of the current sample."""
        if key in self._inputs:
            self._count(self.reused, "inputs")
        else:
            self._inputs[key] = build()
            self._count(self.computed, "inputs")
        return self._inputs[key]

    @contextmanager
    def vision_encoder(self, multimodal: nn.Module) -> Iterator[None]:
        """Within the block, ``multimodal``'s (a ``Qwen2_5_VLModel``) vision encoder calls are memoised by
        the identity of their pixel tensor, which the inputs memo keeps alive for the sample."""
        for name in _ENCODERS:
            setattr(multimodal, name, self._memoised(name, getattr(multimodal, name)))
        try:
            yield
        finally:
            for name in _ENCODERS:
                delattr(multimodal, name)  # the class's method shows through again

    def _memoised(self, name: str, encode: Callable[..., Any]) -> Callable[..., Any]:
        def call(pixel_values: Any, *args: Any, **kwargs: Any) -> Any:
            key = (name, id(pixel_values))
            if key in self._encoded:
                self._count(self.reused, name)
            else:
                self._encoded[key] = encode(pixel_values, *args, **kwargs)
                self._count(self.computed, name)
            return self._encoded[key]

        return call

    @staticmethod
    def _count(counter: dict[str, int], kind: str) -> None:
        counter[kind] = counter.get(kind, 0) + 1
