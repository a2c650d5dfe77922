"""Generate a VideoNIAH set: plan every sample, write its mp4 (streaming), then the annotation file.

Sample ``i`` takes type ``types[i % len(types)]``, then length and depth cycle the same way
(lengths fastest after types), so ``n = len(types) * len(lengths) * len(depths)`` covers the whole
type x length x depth grid once. Everything random in sample ``i`` comes from
``numpy.random.default_rng([seed, i])``: the same seed gives the same annotation bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaspark_eval.data.niah.haystack import FileHaystack, ProceduralHaystack, open_folder
from adaspark_eval.data.niah.questions import LETTERS, OFFICIAL_TYPES, Question, ask, rotations, split_type
from adaspark_eval.data.niah.timeline import Placement, compose, haystack_frames_needed, place
from adaspark_eval.data.video import write_video

ANNOTATION_FILE = "videoniah-4try.json"
DEFAULT_SIZE = (360, 640)  # (H, W) of procedural haystacks when no resolution is given
DEFAULT_LENGTH = 60.0      # seconds of a procedural haystack when no length is given


@dataclass(frozen=True)
class NiahSpec:
    """The knobs of one generated set.

    Attributes:
        n: samples (videos); each gives ``tries`` annotation records.
        seed: root of all randomness.
        lengths: video lengths in seconds, cycled over samples; None = the whole haystack file, or
            60 s for procedural haystacks. A file shorter than the length loops.
        depths: needle depths (fractions in [0, 1]) for one-needle questions, cycled; None = uniform.
        needles: needles per ordering question; the largest answer of a counting question.
        duration: seconds each needle lasts.
        size: (H, W) of the videos, even; None = 360x640, or a haystack file's own size.
        fps: frames per second of the videos.
        types: VNBench types to generate, e.g. ``ret_edit1``.
        tries: circular tries per question (options rotated), 1..4.
        haystack: folder of the user's videos; None = procedural haystacks.
    """

    n: int = 9
    seed: int = 0
    lengths: tuple[float, ...] | None = None
    depths: tuple[float, ...] | None = None
    needles: int = 4
    duration: float = 2.0
    size: tuple[int, int] | None = None
    fps: float = 2.0
    types: tuple[str, ...] = OFFICIAL_TYPES
    tries: int = 4
    haystack: Path | None = None

    def check(self) -> None:
        """Raise ``ValueError`` with a one-line fix for the first bad knob."""
        if self.n < 1:
            raise ValueError(f"--n must be at least 1, got {self.n}")
        if self.fps <= 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if self.duration <= 0:
            raise ValueError(f"--duration must be positive seconds, got {self.duration}")
        if not 1 <= self.tries <= 4:
            raise ValueError(f"--tries must be 1..4, got {self.tries}")
        if self.needles < 1:
            raise ValueError(f"--needles must be at least 1, got {self.needles}")
        if self.lengths is not None and (not self.lengths or min(self.lengths) <= 0):
            raise ValueError(f"--length must be positive seconds, got {self.lengths}")
        if self.depths is not None and (not self.depths or not all(0 <= d <= 1 for d in self.depths)):
            raise ValueError(f"depths {self.depths} must be fractions in [0, 1]: e.g. --depth 0.5, "
                             "--depth 0,0.5,1 or --depth grid:5")
        if self.size is not None and (min(self.size) < 16 or any(s % 2 for s in self.size)):
            raise ValueError(f"resolution {self.size[1]}x{self.size[0]} must be even and at least 16x16 "
                             "(H.264 needs even sizes): e.g. --resolution 224x224")
        if not self.types:
            raise ValueError("--types is empty: give e.g. ret_edit1,ord_insert1 or official")
        for type_ in self.types:
            split_type(type_)


@dataclass(frozen=True)
class Sample:
    """One planned video and its question."""

    type: str
    video: str                 # path relative to the output folder
    haystack: ProceduralHaystack | FileHaystack
    size: tuple[int, int]      # (H, W)
    total: int                 # frames
    depth: float
    question: Question
    placements: list[Placement]
    tries: list[tuple[list[str], int]]


def plan(spec: NiahSpec) -> list[Sample]:
    """Every sample of ``spec``, validated, without decoding or writing any video."""
    spec.check()
    files = open_folder(spec.haystack) if spec.haystack is not None else None
    lengths, depths = spec.lengths or (None,), spec.depths or (None,)
    samples = []
    for i in range(spec.n):
        rng = np.random.default_rng([spec.seed, i])
        type_ = spec.types[i % len(spec.types)]
        length = lengths[i // len(spec.types) % len(lengths)]
        depth = depths[i // (len(spec.types) * len(lengths)) % len(depths)]
        if files is None:
            haystack: ProceduralHaystack | FileHaystack = ProceduralHaystack(int(rng.integers(2**31)))
            size = spec.size or DEFAULT_SIZE
            total = round((length or DEFAULT_LENGTH) * spec.fps)
        else:
            haystack = files[int(rng.integers(len(files)))]
            size = spec.size or (haystack.info.height // 2 * 2, haystack.info.width // 2 * 2)
            total = round((length or haystack.info.duration) * spec.fps)
        question = ask(type_, rng, spec.needles)
        frames = max(1, round(spec.duration * spec.fps))
        placements = place(question.needles, total, frames, rng, depth)
        if depth is None or len(placements) > 1:
            depth = float(np.mean(_needle_depths(placements, total)))
        samples.append(Sample(type_, f"videos/{i:05d}_{type_}.mp4", haystack, size, total, round(depth, 4),
                              question, placements, rotations(question, rng, spec.tries)))
    return samples


def sample_frames(sample: Sample, fps: float) -> Iterator[np.ndarray]:
    """The finished (H, W, 3) uint8 frames of ``sample`` at ``fps``, needles in place, one at a time."""
    needed = haystack_frames_needed(sample.placements, sample.total)
    return compose(sample.haystack.frames(needed, fps, sample.size), sample.placements, sample.total, sample.size)


def render(sample: Sample, out: Path, fps: float, progress: Callable[[int], None] | None = None) -> None:
    """Write ``sample``'s mp4 under ``out``, one frame at a time; ``progress(1)`` after each frame."""
    frames = sample_frames(sample, fps)
    if progress is not None:
        frames = _reporting(frames, progress)
    write_video(out / sample.video, frames, fps)


def annotate(sample: Sample, fps: float) -> list[dict]:
    """The annotation records of ``sample``, one per try, in VNBench-main-4try.json form.

    Official fields: ``video`` ``question`` ``options`` (4 strings) ``gt`` (the answer text)
    ``gt_option`` (its letter) ``needle_time`` (start second of each needle, in order) ``length``
    (seconds) ``type`` ``try``. Extra fields: ``question_id`` (``<video stem>_<try>``), ``needles``
    (labels in order of appearance), ``depth`` (fraction: the ``--depth`` asked for a lone needle,
    else the mean of ``needle_depth``), ``needle_depth`` (per needle: start frame over the last
    possible start frame), ``needle_duration`` (s), ``fps``, ``haystack`` (``procedural`` or the file
    name).
    """
    stem = Path(sample.video).stem
    records = []
    for attempt, (options, gold) in enumerate(sample.tries):
        records.append({
            "video": sample.video,
            "question": sample.question.text,
            "options": options,
            "gt": sample.question.answer,
            "gt_option": LETTERS[gold],
            "needle_time": [round(p.start / fps, 3) for p in sample.placements],
            "length": round(sample.total / fps, 3),
            "type": sample.type,
            "try": attempt,
            "question_id": f"{stem}_{attempt}",
            "needles": [p.needle.label for p in sample.placements],
            "depth": sample.depth,
            "needle_depth": _needle_depths(sample.placements, sample.total),
            "needle_duration": round(sample.placements[0].frames / fps, 3),
            "fps": float(fps),
            "haystack": sample.haystack.name,
        })
    return records


def generate(spec: NiahSpec, out: Path, progress: Callable[[int], None] | None = None) -> Path:
    """Plan ``spec`` and write the set under ``out`` (see ``write_set``); return the annotation path."""
    return write_set(plan(spec), out, spec.fps, progress)


def write_set(samples: Sequence[Sample], out: Path, fps: float,
              progress: Callable[[int], None] | None = None) -> Path:
    """Write every video under ``out/videos``, then ``out/videoniah-4try.json``; return its path.

    ``progress(k)`` reports ``k`` more frames written (``total_frames(samples)`` in all).
    """
    records = []
    for sample in samples:
        render(sample, out, fps, progress)
        records.extend(annotate(sample, fps))
    return write_annotation(records, out)


def total_frames(samples: Sequence[Sample]) -> int:
    """Frames all ``samples`` write together (for a progress bar)."""
    return sum(sample.total for sample in samples)


def write_annotation(records: list[dict], out: Path) -> Path:
    """Write ``records`` to ``out/videoniah-4try.json`` atomically; same records, same bytes."""
    path = out / ANNOTATION_FILE
    out.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def _needle_depths(placements: list[Placement], total: int) -> list[float]:
    """Each needle's start frame over the last frame a needle could start on (0 = first, 1 = last)."""
    span = max(total - placements[0].frames, 1)
    return [round(p.start / span, 4) for p in placements]


def _reporting(frames: Iterator[np.ndarray], progress: Callable[[int], None]) -> Iterator[np.ndarray]:
    for frame in frames:
        yield frame
        progress(1)
