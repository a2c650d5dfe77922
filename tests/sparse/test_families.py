"""The family seam: which family a config is, and the token layout of a Qwen3-VL prompt, whose temporal groups
are separated by timestamp text: a cube spans consecutive groups across that text, which stays text."""

from __future__ import annotations

import pytest
import torch

from adaspark_eval.sparse.families import FAMILIES, MODEL_TYPES, family_of
from adaspark_eval.sparse.layout import build_layout

VIDEO, TEXT = 7, 1


def test_family_of_reads_the_model_type():
    assert [family_of({"model_type": t}).model_type for t in MODEL_TYPES] == list(MODEL_TYPES)
    assert family_of({"model_type": "qwen3_vl_moe"}).moe and not FAMILIES["qwen3-vl"].moe
    with pytest.raises(ValueError, match="qwen2_5_vl, qwen2_vl, qwen3_vl, qwen3_vl_moe"):
        family_of({"model_type": "llava"})


def test_qwen3_cubes_span_temporal_groups_across_timestamp_text():
    # 4 temporal groups of 2 x 2 video tokens, each after 3 timestamp tokens: "<t seconds>"
    ids = [TEXT, TEXT]
    for _ in range(4):
        ids += [TEXT] * 3 + [VIDEO] * 4
    layout = build_layout(torch.tensor([ids + [TEXT]]), video_token_id=VIDEO, image_token_id=99, cube=(2, 2, 2),
                          video_grid_thw=torch.tensor([[4, 4, 4]]), spatial_merge_size=2)
    video = torch.tensor(ids + [TEXT]) == VIDEO
    assert torch.equal(layout.is_visual[0], video)
    cubes = layout.unit[0][video].view(4, 4)
    # groups 0-1 form one cube, groups 2-3 the next: each cube reaches over the timestamp between its groups
    assert torch.equal(cubes[0], cubes[1]) and torch.equal(cubes[2], cubes[3]) and cubes[0, 0] != cubes[2, 0]
    visual_units = layout.unit_is_visual[0].nonzero().flatten()
    assert layout.unit_size[0, visual_units].tolist() == [8, 8]
    timestamps = (~video).nonzero().flatten()
    assert not layout.unit_is_visual[0, layout.unit[0, timestamps]].any()  # the timestamp text stays text
    first, last = layout.unit_first[0, visual_units[0]], layout.unit_last[0, visual_units[0]]
    assert (layout.is_text[0, first:last + 1]).sum() == 3  # the timestamp inside the first cube's span
