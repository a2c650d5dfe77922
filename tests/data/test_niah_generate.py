"""VideoNIAH generation: decodable videos of the asked shape, needles where the annotation says, determinism."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from adaspark_eval.data.niah import ANNOTATION_FILE, NiahSpec, generate, plan
from adaspark_eval.data.niah.generate import total_frames
from adaspark_eval.data.niah.haystack import GREY_RANGE
from adaspark_eval.data.niah.needles import BACKGROUND, COLOURS, PANEL
from adaspark_eval.data.niah.questions import ALL_TYPES
from adaspark_eval.data.niah.timeline import compose, haystack_frames_needed
from adaspark_eval.data.video import iter_frames, probe_video, write_video

FPS, SIDE, LENGTH = 4.0, 112, 4.0
SPEC = NiahSpec(n=len(ALL_TYPES), seed=7, lengths=(LENGTH,), needles=3, duration=0.5, size=(SIDE, SIDE),
                fps=FPS, types=ALL_TYPES)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(folder, records) of one sample of every type, 4 s at 4 fps, 112x112."""
    out = tmp_path_factory.mktemp("niah")
    path = generate(SPEC, out)
    return out, json.loads(path.read_text())


def needle_frames(record):
    """Output frame indices the annotation says show a needle."""
    frames = round(record["needle_duration"] * record["fps"])
    starts = [round(t * record["fps"]) for t in record["needle_time"]]
    return {s + k for s in starts for k in range(frames)}


def looks_like_needle(kind, frame):
    """Does this decoded frame show a needle of ``kind``? (pixels the haystack never has)"""
    if kind == "edit1":  # black subtitle band over the bottom fifth
        return np.median(frame[-SIDE // 5:]) < 30
    if kind == "edit2":  # white panel in the top-right corner
        return frame[10:13, SIDE - 13:SIDE - 10].mean() > PANEL - 20
    return abs(frame[:3, :3].astype(float).mean() - BACKGROUND) < 8  # inserted frame


def colour_pixels(frame, colour):
    return int((np.abs(frame.astype(int) - np.array(COLOURS[colour])).sum(-1) < 60).sum())


def test_videos_decode_with_the_asked_length_fps_and_resolution(generated):
    out, records = generated
    assert len(records) == 4 * len(ALL_TYPES)
    for record in records[::4]:
        info = probe_video(out / record["video"])
        assert (info.frames, info.fps, info.height, info.width) == (LENGTH * FPS, FPS, SIDE, SIDE)
        assert record["length"] == LENGTH


def test_official_fields_and_circular_tries(generated):
    _, records = generated
    official = ["video", "question", "options", "gt", "gt_option", "needle_time", "length", "type", "try"]
    for start in range(0, len(records), 4):
        tries = records[start:start + 4]
        for k, record in enumerate(tries):
            assert list(record)[:9] == official
            assert record["try"] == k and len(record["options"]) == 4 and len(set(record["options"])) == 4
            assert record["options"][ord(record["gt_option"]) - ord("A")] == record["gt"]
            assert record["options"] == tries[0]["options"][k:] + tries[0]["options"][:k]
        assert sorted(r["gt_option"] for r in tries) == ["A", "B", "C", "D"]
        record = tries[0]
        task = record["type"].split("_")[0]
        if task == "cnt":
            assert len(record["needle_time"]) == int(record["gt"]) and len(set(record["needles"])) == 1
        elif task == "ord":
            assert record["gt"] == " -> ".join(record["needles"]) and len(record["needles"]) == 3
        else:
            assert record["needles"] == [record["gt"]]
        assert record["needle_time"] == sorted(record["needle_time"])


def test_needles_are_exactly_where_the_annotation_says(generated):
    out, records = generated
    for record in records[::4]:
        kind = record["type"].split("_")[1]
        frames = list(iter_frames(out / record["video"], range(int(LENGTH * FPS))))
        shown = {i for i, frame in enumerate(frames) if looks_like_needle(kind, frame)}
        assert shown == needle_frames(record), record["type"]
        if kind == "edit1":
            continue
        per_needle = round(record["needle_duration"] * FPS)
        for time, label in zip(record["needle_time"], record["needles"]):
            frame = frames[round(time * FPS) + per_needle - 1]
            region = frame[8:62, SIDE - 62:SIDE - 8] if kind == "edit2" else frame  # inside the panel
            colour = label.split(" ")[0]
            assert colour_pixels(region, colour) > 40, (record["type"], label)
            assert max(colour_pixels(region, c) for c in COLOURS if c != colour) < 10, (record["type"], label)


def test_edit_needles_keep_the_haystack_and_subtitles_are_bright(generated):
    out, records = generated
    record = next(r for r in records if r["type"] == "ret_edit1")
    frame = next(iter_frames(out / record["video"], [round(record["needle_time"][0] * FPS)]))
    assert frame[-SIDE // 5:].max() > 200  # the white word
    low, high = GREY_RANGE
    assert low - 10 <= np.median(frame[:SIDE // 2]) <= high + 10  # haystack above the band


def test_same_seed_same_bytes_other_seed_other_needles(tmp_path):
    spec = NiahSpec(n=3, seed=11, lengths=(3.0,), needles=3, duration=0.5, size=(32, 32), fps=4.0,
                    types=("ret_edit1", "ord_insert1", "cnt_edit2"))
    first = generate(spec, tmp_path / "a").read_bytes()
    assert generate(spec, tmp_path / "b").read_bytes() == first
    other = json.loads(generate(dataclasses.replace(spec, seed=12), tmp_path / "c").read_text())
    mine = json.loads(first)
    assert [r["needles"] for r in other] != [r["needles"] for r in mine]
    assert [r["needle_time"] for r in other] != [r["needle_time"] for r in mine]


def test_depth_grid_places_retrieval_needles(tmp_path):
    spec = NiahSpec(n=6, seed=0, lengths=(3.0, 5.0), depths=(0.0, 0.5, 1.0), duration=0.5, size=(32, 32),
                    fps=4.0, types=("ret_insert1",), tries=1)
    records = json.loads(generate(spec, tmp_path).read_text())
    cells = [(r["length"], r["depth"], r["needle_time"][0]) for r in records]
    assert cells == [(3.0, 0.0, 0.0), (5.0, 0.0, 0.0), (3.0, 0.5, 1.25), (5.0, 0.5, 2.25),
                     (3.0, 1.0, 2.5), (5.0, 1.0, 4.5)]


def test_user_haystack_is_resampled_looped_and_kept_at_its_size(tmp_path):
    folder = tmp_path / "haystacks"
    levels = [50 + 5 * i for i in range(24)]  # a 3 s, 8 fps clip whose frame i is flat grey 50 + 5 i
    write_video(folder / "mine.mp4", (np.full((48, 64, 3), v, np.uint8) for v in levels), fps=8)
    spec = NiahSpec(n=1, seed=0, lengths=(5.0,), depths=(0.5,), duration=0.5, fps=4.0,
                    types=("ret_edit2",), tries=1, haystack=folder)
    record = json.loads(generate(spec, tmp_path / "out").read_text())[0]
    info = probe_video(tmp_path / "out" / record["video"])
    assert (info.frames, info.height, info.width) == (20, 48, 64) and record["haystack"] == "mine.mp4"
    frames = list(iter_frames(tmp_path / "out" / record["video"], range(20)))
    for k in sorted(set(range(20)) - needle_frames(record)):
        assert abs(frames[k].mean() - levels[(2 * k) % 24]) < 4, k  # output k shows source second k / 4


def test_hour_long_plans_cheaply_and_streams(tmp_path):
    spec = NiahSpec(n=2, seed=0, lengths=(3600.0,), fps=30.0, size=(64, 64), types=("ord_insert2", "cnt_edit1"))
    samples = plan(spec)
    assert total_frames(samples) == 2 * 3600 * 30
    sample = samples[0]
    stream = compose(sample.haystack.frames(haystack_frames_needed(sample.placements, sample.total), 30.0,
                                            sample.size), sample.placements, sample.total, sample.size)
    assert next(stream).shape == (64, 64, 3) and next(stream).dtype == np.uint8


@pytest.mark.parametrize("changes, message", [
    ({"depths": (1.5,)}, "must be fractions in [0, 1]"),
    ({"lengths": (1.0,), "needles": 5, "types": ("ord_edit1",)}, "cannot hold 5 needle(s)"),
    ({"size": (33, 32)}, "must be even"),
    ({"types": ("ret_edit9",)}, "unknown type 'ret_edit9'"),
    ({"needles": 2, "types": ("ord_insert1",)}, "ordering needs at least 3 needles"),
])
def test_bad_knobs_name_the_fix(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plan(dataclasses.replace(SPEC, **changes))


def test_bad_haystack_folders_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="holds no videos"):
        plan(NiahSpec(haystack=tmp_path))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="broken.mp4 cannot be decoded.*remove it from the haystack folder"):
        plan(NiahSpec(haystack=tmp_path))
    with pytest.raises(ValueError, match="does not exist"):
        plan(NiahSpec(haystack=tmp_path / "missing"))


def test_annotation_paths_are_relative(generated):
    out, records = generated
    assert (out / ANNOTATION_FILE).is_file()
    assert all(not Path(r["video"]).is_absolute() and (out / r["video"]).is_file() for r in records)
