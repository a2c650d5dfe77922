"""Helpers of the tests of methods that remove visual tokens before the language model: what the language
model was given, and the stock language model run on the kept tokens alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


@contextmanager
def language_model_inputs(model: nn.Module) -> Iterator[dict]:
    """Within the block, ``seen`` holds the latest ``inputs_embeds`` and ``position_ids`` the language model got
    (after the method's own hook, registered earlier)."""
    seen: dict = {}

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        if kwargs.get("past_key_values") is None or kwargs["past_key_values"].get_seq_length() == 0:
            seen.update(embeds=kwargs["inputs_embeds"], positions=kwargs["position_ids"])

    handle = model.model.language_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def stock_on_kept(model: nn.Module, seen: dict, kept: Tensor) -> Tensor:
    """(1, V) next-token logits of transformers' own language model (sdpa, no AdaSpark) on the kept tokens of
    ``seen`` only, each at its position in the full prompt."""
    text_config = model.config.text_config
    previous, text_config._attn_implementation = text_config._attn_implementation, "sdpa"
    try:
        with torch.no_grad():
            hidden = model.model.language_model(inputs_embeds=seen["embeds"][:, kept[0]],
                                                position_ids=seen["positions"][..., kept[0]]).last_hidden_state
    finally:
        text_config._attn_implementation = previous
    return model.lm_head(hidden[:, -1])
