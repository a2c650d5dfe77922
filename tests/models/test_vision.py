"""The batched vision window attention (``--batched-vision``) computes the vision encoder's output of
transformers' per-window path, on windows of several lengths (edges included), and swaps back."""

from __future__ import annotations

import torch

from adaspark_eval.models.vision import BatchedVisionAttention, batch_vision, unbatch_vision, windows_by_length


def test_windows_are_grouped_by_length() -> None:
    groups = windows_by_length(torch.tensor([0, 4, 8, 10, 14, 16]))
    assert {k: v.tolist() for k, v in groups.items()} == {2: [8, 14], 4: [0, 4, 10]}


def test_batched_window_attention_equals_the_per_window_path(tiny) -> None:
    model, _ = tiny
    visual = model.model.visual
    grid = torch.tensor([[4, 16, 20], [2, 8, 12]])  # 20 and 12 patches wide: edge windows are shorter
    pixels = torch.randn(int(grid.prod(-1).sum()), 3 * 2 * 14 * 14, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = visual(pixels, grid_thw=grid).pooler_output
        batch_vision(model)
        try:
            assert any(isinstance(m, BatchedVisionAttention) for m in visual.modules())
            batched = visual(pixels, grid_thw=grid).pooler_output
        finally:
            unbatch_vision(model)
    assert not any(isinstance(m, BatchedVisionAttention) for m in visual.modules())
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-5)
