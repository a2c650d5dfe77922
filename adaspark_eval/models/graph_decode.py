"""Greedy decoding on a static KV cache, the one-token step replayed as a CUDA graph (opt-in: ``--decode graph``).

transformers' ``generate`` runs each decode step as a Python-driven forward over a growing (dynamic) KV
cache: for a 7B model at batch 1 that is ~40 ms per token on an H200, almost all of it launching ~1,000
small kernels (benchmarks/EVAL_THROUGHPUT.md), while reading the weights once takes ~3 ms. Here:

1. the prefill is ``generate`` itself with one new token (the same call, so the same prefill, records and first
   token as the default path; its dynamic cache is returned);
2. that cache is copied into ``StaticKV``: fixed buffers of ``capacity`` slots (a multiple of
   ``CAPACITY_STEP``, grown when a longer sample comes), so every step has the same shapes and addresses;
3. one step (embed the last token, 3-D rotary positions from the prefill's ``rope_deltas``, the decoder
   layers over all slots under a mask that hides the slots not written yet, LM head, argmax) is captured once
   as a CUDA graph and replayed per token; the step advances its own slot and token on the GPU, and the host
   reads one token id per step to stop at EOS.

Without CUDA (CI on the tiny model) the same step runs eagerly, so the loop's logic is tested against
``generate`` on the CPU. The attention reads ``capacity`` keys with a mask instead of exactly the keys
written, so the sums run in another order than ``generate``'s: in bf16 a prediction can differ in rare
near-ties, which is why ``decode`` enters the config key.

AdaSpark stays attached: the prefill runs through its hooks as always; the decode steps are dense (text
queries; ``SparseRuntime.dense_decode``) and run with the runtime bypassed, each recorded as the dense step it
is (``SparseRuntime.record_dense_decode``), so the FLOP counts are those of the default path.

    decoder = GraphDecoder(model)
    sequences = decoder.generate(inputs, max_new_tokens=16, eos_token_id=eos, pad_token_id=pad)  # (1, L + n)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

#: The decode loops: transformers' ``generate`` (dynamic cache), or the static-cache loop of this module.
DECODE_MODES = ("generate", "graph")
#: Static KV capacity grows in steps of this many token slots (one graph serves every sample that fits).
CAPACITY_STEP = 4096


class StaticKV:
    """The KV cache of the decode steps, as transformers' decoder layers call it (``update``).

    Attributes:
        keys, values: (layers, B, Hkv, capacity, D) at fixed addresses.
        slot: (1,) long on the device: where the current token's key and value go (its position).
    """

    def __init__(self, layers: int, batch: int, kv_heads: int, head_dim: int, capacity: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        shape = (layers, batch, kv_heads, capacity, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.capacity = capacity

    def update(self, key: Tensor, value: Tensor, layer: int, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """Store one step's key and value (B, Hkv, 1, D) of ``layer`` at ``slot``; returns all its slots
        (B, Hkv, capacity, D) (the step's mask hides those after ``slot``)."""
        self.keys[layer].index_copy_(2, self.slot, key)
        self.values[layer].index_copy_(2, self.slot, value)
        return self.keys[layer], self.values[layer]

    def fill(self, layers: Iterable[tuple[Tensor, Tensor]], length: int) -> None:
        """Copy a prefill's (keys, values) per layer, each (B, Hkv, length, D), into the first slots."""
        for index, (key, value) in enumerate(layers):
            self.keys[index, :, :, :length].copy_(key)
            self.values[index, :, :, :length].copy_(value)


class GraphDecoder:
    """Greedy decoding of a Qwen2.5-VL (``Qwen2_5_VLForConditionalGeneration``) at batch 1: prefill by
    ``generate``, decode steps on a ``StaticKV``, replayed as a CUDA graph on a GPU (``graph=None``: when
    the model is on CUDA), run eagerly otherwise."""

    def __init__(self, model: nn.Module, graph: bool | None = None) -> None:
        self.model = model
        self.text = model.model.language_model
        config = model.config.text_config
        if any(kind != "full_attention" for kind in config.layer_types):
            raise ValueError("decode=graph runs full-attention layers only (this model has sliding-window layers): "
                             "pass decode=generate")
        self.device = self.text.embed_tokens.weight.device
        self.graph = self.device.type == "cuda" if graph is None else graph
        self.kv: StaticKV | None = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self.captures = 0  # graphs captured so far (one per capacity reached)
        self.keep_logits = False  # tests: keep each decode step's logits (float32) in ``logits``
        self.logits: list[Tensor] = []

    @torch.no_grad()
    def generate(self, inputs: Mapping[str, Any], max_new_tokens: int, eos_token_id: int | list[int] | None,
                 pad_token_id: int | None = None) -> Tensor:
        """``model.generate(**inputs, do_sample=False, num_beams=1, ...)``'s output (1, L + n): the prompt and
        the n <= ``max_new_tokens`` tokens up to and including the first EOS."""
        input_ids = inputs["input_ids"]
        if input_ids.shape[0] != 1:
            raise ValueError(f"decode=graph answers one sample at a time (batch {input_ids.shape[0]}): pass batch 1")
        runtime = getattr(self.model, "adaspark", None)
        if runtime is not None and not runtime.dense_decode:
            raise ValueError("decode=graph replays dense decode steps, and sparse_decode=true makes them sparse: "
                             "pass decode=generate or sparse_decode=false")
        first = self.model.generate(**inputs, eos_token_id=eos_token_id, pad_token_id=pad_token_id, do_sample=False,
                                    num_beams=1, max_new_tokens=1, use_cache=True, return_dict_in_generate=True)
        sequence = first.sequences
        stop = set([eos_token_id] if isinstance(eos_token_id, int) else eos_token_id or [])
        if max_new_tokens <= 1 or int(sequence[0, -1]) in stop:
            return sequence
        cache = first.past_key_values
        length = sequence.shape[1] - 1  # tokens in the cache: the prompt
        self._reserve(length + max_new_tokens)
        assert self.kv is not None
        self.kv.fill(((layer.keys, layer.values) for layer in cache.layers), length)
        del first, cache
        self.kv.slot.fill_(length)
        self._token.copy_(sequence[:, -1:])
        self._rope_deltas.copy_(self.model.model.rope_deltas.reshape(1, 1))
        tokens = [sequence]
        self.logits = []
        with runtime.bypassed() if runtime is not None else nullcontext():
            for step in range(max_new_tokens - 1):
                if self._graph is not None:
                    self._graph.replay()
                else:
                    self._step()
                token = self._next.clone()
                tokens.append(token)
                if self.keep_logits:
                    self.logits.append(self._logits.clone())
                if runtime is not None:
                    runtime.record_dense_decode(length + step + 1)
                if int(token) in stop:
                    break
        return torch.cat(tokens, dim=1)

    def _reserve(self, slots: int) -> None:
        """Static buffers (and on a GPU the graph) for at least ``slots`` positions."""
        if self.kv is not None and self.kv.capacity >= slots:
            return
        self._graph = self.kv = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        config = self.model.config.text_config
        capacity = math.ceil(slots / CAPACITY_STEP) * CAPACITY_STEP
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        dtype = self.text.embed_tokens.weight.dtype
        self.kv = StaticKV(config.num_hidden_layers, 1, config.num_key_value_heads, head_dim, capacity, dtype,
                           self.device)
        self._token = torch.zeros(1, 1, dtype=torch.long, device=self.device)
        self._next = torch.zeros(1, 1, dtype=torch.long, device=self.device)
        self._logits = torch.zeros(1, self.model.lm_head.out_features, dtype=torch.float32, device=self.device)
        self._rope_deltas = torch.zeros(1, 1, dtype=torch.long, device=self.device)
        self._slots = torch.arange(capacity, device=self.device)
        if self.graph:
            self._capture()

    def _step(self) -> None:
        """One decode step on the static buffers: token ``_token`` at position ``kv.slot`` -> ``_next``; then
        ``_token`` = ``_next`` and ``slot`` + 1. No host sync (capturable)."""
        kv = self.kv
        assert kv is not None
        text = kv.slot.view(1, 1)  # (B, 1) position in the sequence
        rope = text + self._rope_deltas  # the 3-D rotary position of a text token after the video
        position_ids = torch.stack([text, rope, rope, rope])  # (4, B, 1): text row, then t / h / w
        mask = (self._slots <= kv.slot).view(1, 1, 1, -1)  # (B, 1, 1, capacity): the slots written so far
        hidden = self.text(inputs_embeds=self.text.embed_tokens(self._token), position_ids=position_ids,
                           attention_mask={"full_attention": mask}, past_key_values=kv,
                           use_cache=True).last_hidden_state
        logits = self.model.lm_head(hidden[:, -1])  # (B, vocab)
        self._logits.copy_(logits)
        self._next.copy_(logits.argmax(dim=-1, keepdim=True))
        self._token.copy_(self._next)
        kv.slot.add_(1)

    def _capture(self) -> None:
        """Warm up and capture ``_step`` on scratch state (the last slot), with the runtime bypassed."""
        kv = self.kv
        assert kv is not None
        runtime = getattr(self.model, "adaspark", None)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        graph = torch.cuda.CUDAGraph()
        with runtime.bypassed() if runtime is not None else nullcontext(), torch.cuda.device(self.device):
            with torch.cuda.stream(stream):
                for _ in range(2):  # lazy initialisations (cuBLAS workspaces, kernel selection) outside capture
                    kv.slot.fill_(kv.capacity - 1)
                    self._step()
            torch.cuda.current_stream(self.device).wait_stream(stream)
            kv.slot.fill_(kv.capacity - 1)
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self._step()
        torch.cuda.synchronize(self.device)
        self._graph = graph
        self.captures += 1

