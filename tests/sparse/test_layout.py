import pytest
import torch

from adaspark_eval.sparse.layout import PAD, build_layout

T, V, I, P = 1, 9, 8, 0  # text, video pad, image pad, padding ids of this toy vocabulary


def _layout(ids, mask=None, videos=((2, 4, 6),), images=((1, 4, 4),), cube=(1, 2, 2)):
    return build_layout(
        torch.tensor(ids), video_token_id=V, image_token_id=I, cube=cube,
        video_grid_thw=torch.tensor(videos) if videos else None,
        image_grid_thw=torch.tensor(images) if images else None,
        attention_mask=None if mask is None else torch.tensor(mask),
    )


SEQ = [T, T] + [V] * 12 + [T] + [I] * 4 + [T]


def test_cubes_of_a_video_and_an_image_with_edge_cubes():
    layout = _layout([SEQ])
    # units by first position: text(0-1)=0, video cubes 1..4, text(14)=5, image cube=6, text(19)=7
    expected = [0, 0] + [1, 1, 2, 1, 1, 2, 3, 3, 4, 3, 3, 4] + [5] + [6] * 4 + [7]
    assert layout.unit[0].tolist() == expected
    assert layout.is_visual[0].tolist() == [False] * 2 + [True] * 12 + [False] + [True] * 4 + [False]
    assert layout.grid[0].tolist() == [PAD] * 2 + [0] * 12 + [PAD] + [1] * 4 + [PAD]
    assert layout.unit_size[0].tolist() == [2, 4, 2, 4, 2, 1, 4, 1]
    assert layout.unit_first[0].tolist() == [0, 2, 4, 8, 10, 14, 15, 19]
    assert layout.unit_last[0].tolist() == [1, 6, 7, 12, 13, 14, 18, 19]
    assert layout.unit_is_visual[0].tolist() == [False, True, True, True, True, False, True, False]


def test_selectable_and_choosing_units_follow_the_text_knobs():
    short = [T] + [V] * 12 + [T]
    layout = _layout([SEQ, [P] * (len(SEQ) - len(short)) + short],
                     [[1] * len(SEQ), [0] * (len(SEQ) - len(short)) + [1] * len(short)], videos=((2, 4, 6), (2, 4, 6)))
    visual, real = layout.unit_is_visual, layout.unit_size > 0
    assert visual[1].tolist() == [False, True, True, True, True, False, False, False]
    assert torch.equal(layout.selectable_units("all"), visual) and torch.equal(layout.choosing_units("dense"), visual)
    assert torch.equal(layout.selectable_units("sparse"), real) and torch.equal(layout.choosing_units("sparse"), real)
    for knob in ("dense", "sparse"):  # a token chooses exactly when its unit does; padding never
        tokens = layout.choosing_tokens(knob)
        units = layout.choosing_units(knob).gather(1, layout.unit.clamp_min(0))
        assert torch.equal(tokens, units & (layout.unit != PAD))


def test_text_runs_are_chunked_by_cube_volume():
    layout = _layout([[T] * 9 + [V] * 12], images=None, cube=(1, 2, 2))
    assert layout.unit[0, :9].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2]


def test_batch_with_left_padding_and_grids_in_order():
    short = [T] + [V] * 12 + [T]
    ids = [SEQ, [P] * (len(SEQ) - len(short)) + short]
    mask = [[1] * len(SEQ), [0] * (len(SEQ) - len(short)) + [1] * len(short)]
    layout = _layout(ids, mask, videos=((2, 4, 6), (2, 4, 6)))
    pad = len(SEQ) - len(short)
    assert layout.unit[1, :pad].tolist() == [PAD] * pad
    assert layout.unit[1, pad:].tolist() == [0] + [1, 1, 2, 1, 1, 2, 3, 3, 4, 3, 3, 4] + [5]
    assert layout.num_units == 8  # padded to the larger sample
    assert layout.unit_size[1].tolist() == [1, 4, 2, 4, 2, 1, 0, 0]
    assert layout.unit_first[1, 6:].tolist() == [len(SEQ)] * 2  # padded unit slots are never visible


def test_append_text_continues_the_last_text_chunk():
    layout = _layout([SEQ]).append_text(5)
    assert layout.seq_len == len(SEQ) + 5
    # the last text unit (position 19) grows to the cube volume (4), then a new chunk starts
    assert layout.unit[0, 19:].tolist() == [7, 7, 7, 7, 8, 8]
    assert layout.unit[0, :19].tolist() == _layout([SEQ]).unit[0, :19].tolist()


def test_mismatched_grids_are_rejected():
    with pytest.raises(ValueError, match="more video tokens"):
        _layout([SEQ], videos=((2, 2, 2),))  # 2 tokens described, 12 present
    with pytest.raises(ValueError, match="grid_thw has 2 rows"):
        _layout([SEQ], videos=((2, 4, 6), (2, 4, 6)))
