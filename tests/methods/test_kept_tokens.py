"""Attention on the kept tokens: the gathered path (one sample, no mask) equals the reference path that
masks removed keys (``pruned_attention``) on every kept query, and both count the same pairs."""

from __future__ import annotations

import torch

from adaspark_eval.methods.kept_tokens import kept_attention, pruned_attention


def test_gathered_path_equals_the_masked_reference() -> None:
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(1, heads, 12, 8, generator=generator) for heads in (4, 2, 2))
    keys = torch.rand(1, 12, generator=generator) > 0.4
    keys[0, -1] = True  # the last token (text) is kept
    real = torch.ones_like(keys)
    for q in (query, query[:, :, -1:]):  # prefill, and one decode query
        gathered, stats = kept_attention(q, key, value, None, keys, real, 0.3, chunk=5)
        reference, expected = pruned_attention(q, key, value, None, keys, real, 0.3, chunk=5)
        rows = keys[0, -q.shape[2]:]
        assert torch.allclose(gathered[:, rows], reference[:, rows], atol=1e-6)
        assert torch.equal(stats.pairs, expected.pairs) and torch.equal(stats.tokens, expected.tokens)
    prefill, _ = kept_attention(query, key, value, None, keys, real, 0.3, chunk=5)
    assert bool((prefill[:, ~keys[0]] == 0).all())  # a removed row's output: zero (its residual unchanged)
