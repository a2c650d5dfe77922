"""Small datasets in the exact on-disk layout of each benchmark's official release, with short generated
mp4s: what tests (and a first try of the pipeline) run the real readers, lmms-eval tasks and scoring on.

Everything is deterministic in ``seed``. Video-MME and MLVU rows take valid values of the official
vocabularies (lmms-eval's duration / domain / task lists, MLVU's seven task types); VideoNIAH sets
come from ``data.niah`` (the generator of that benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from adaspark_eval.datasets import get_benchmark
from adaspark_eval.datasets.mlvu import ANNOTATION as MLVU_ANNOTATION
from adaspark_eval.datasets.mlvu import TASK_TYPES as MLVU_TASK_TYPES
from adaspark_eval.datasets.videomme import ANNOTATION as VIDEOMME_ANNOTATION
from adaspark_eval.data.niah.generate import NiahSpec, generate
from adaspark_eval.data.video import write_video

LETTERS = "ABCD"
WORDS = ("red", "green", "blue", "yellow", "circle", "square", "triangle", "star", "cat", "dog", "car", "tree")


def write_fixtures(root: str | Path, tasks: Iterable[str] = ("videomme", "mlvu_dev", "videoniah"), samples: int = 3,
                   seed: int = 0, frames: int = 8, size: tuple[int, int] = (112, 140), fps: float = 4.0) -> Path:
    """Write a fixture data root: ``samples`` questions per task, one video each, of ``frames`` frames
    at ``size`` = (H, W) (even) and ``fps``. VideoNIAH gets one needle question per video, asked in 4
    circular tries (so ``4 * samples`` rows). Returns ``root``."""
    root = Path(root)
    writers = {"videomme": _videomme, "mlvu_dev": _mlvu_dev, "videoniah": _videoniah}
    for name in tasks:
        benchmark = get_benchmark(name)
        rng = np.random.default_rng([seed, list(writers).index(benchmark.name)])
        writers[benchmark.name](benchmark.folder(root), samples, rng, frames, size, fps)
    return root


def _videomme(folder: Path, samples: int, rng: np.random.Generator, frames: int, size: tuple[int, int],
              fps: float) -> None:
    from lmms_eval.tasks.videomme.utils import CATEGORIES, SUB_CATEGORIES, TASK_CATEGORIES, VIDEO_TYPE

    rows = []
    for i in range(samples):
        video_id = f"{i + 1:03d}"
        video = f"fixture{int(rng.integers(10**6)):06d}"
        answer = LETTERS[int(rng.integers(4))]
        rows.append({
            "video_id": video_id, "duration": VIDEO_TYPE[i % len(VIDEO_TYPE)],
            "domain": CATEGORIES[i % len(CATEGORIES)], "sub_category": SUB_CATEGORIES[i % len(SUB_CATEGORIES)],
            "url": f"https://www.youtube.com/watch?v={video}", "videoID": video, "question_id": f"{video_id}-1",
            "task_type": TASK_CATEGORIES[i % len(TASK_CATEGORIES)], "question": _question(rng),
            "options": [f"{letter}. {word}" for letter, word in zip(LETTERS, _words(rng, 4))], "answer": answer,
        })
        _write_clip(folder / "data" / f"{video}.mp4", rng, frames, size, fps)
    _write_parquet(folder / VIDEOMME_ANNOTATION, rows)


def _mlvu_dev(folder: Path, samples: int, rng: np.random.Generator, frames: int, size: tuple[int, int],
              fps: float) -> None:
    rows = []
    for i in range(samples):
        task_type = MLVU_TASK_TYPES[i % len(MLVU_TASK_TYPES)]
        candidates = _words(rng, 4)
        options = "\n".join(f"({letter}) {word}" for letter, word in zip(LETTERS, candidates))
        video_name = f"{task_type}/fixture_{i:03d}.mp4"
        rows.append({
            "video_name": video_name, "duration": frames / fps, "question": f"{_question(rng)}\n{options}",
            "candidates": candidates, "answer": LETTERS[int(rng.integers(4))], "task_type": task_type,
            "question_id": f"{task_type}_{i}",
        })
        _write_clip(folder / video_name, rng, frames, size, fps)
    _write_parquet(folder / MLVU_ANNOTATION, rows)


def _videoniah(folder: Path, samples: int, rng: np.random.Generator, frames: int, size: tuple[int, int],
               fps: float) -> None:
    spec = NiahSpec(n=samples, seed=int(rng.integers(2**31)), lengths=(frames / fps,), duration=2 / fps,
                    size=size, fps=fps, types=("ret_edit1", "ret_insert1", "cnt_edit1"), needles=2)
    generate(spec, folder)


def _question(rng: np.random.Generator) -> str:
    return f"Which {_words(rng, 1)[0]} thing appears in the video?"


def _words(rng: np.random.Generator, count: int) -> list[str]:
    return [WORDS[i] for i in rng.choice(len(WORDS), size=count, replace=False)]


def _write_clip(path: Path, rng: np.random.Generator, frames: int, size: tuple[int, int], fps: float) -> None:
    """A square of a random colour crossing a background of another random colour."""
    height, width = size
    background, colour = rng.integers(0, 256, (2, 3), dtype=np.uint8)
    side = min(height, width) // 3
    top = int(rng.integers(0, height - side))

    def frame(t: int) -> np.ndarray:
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[:] = background
        left = (width - side) * t // max(frames - 1, 1)
        image[top : top + side, left : left + side] = colour
        return image

    write_video(path, (frame(t) for t in range(frames)), fps)


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
