"""The inputs of ``eval_throughput.py``, generated on the machine that runs it: a Video-MME-shaped data root
(the official layout ``datasets.videomme`` reads) of long 1280x720 H.264 videos, and a checkpoint folder with
Qwen2.5-VL-7B's architecture, random bf16 weights and the project's tokenizer, chat template and processor
config, which lmms-eval's stock ``qwen2_5_vl`` class and ``AdaSparkLMM`` both load.

    PYTHONPATH=. python3 benchmarks/eval_setup.py --out DIR [--videos 16] [--minutes 2 5] [--layers 28]

Every step is timed; ``setup_json`` returns the timings with the shape of what was made.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaspark_eval.data.video import write_video
from adaspark_eval.datasets.videomme import ANNOTATION
from adaspark_eval.flops.known_models import KNOWN_MODELS
from adaspark_eval.models.loading import EMBEDDED_DIR

LETTERS = "ABCD"
# The embedded model's tokenizer, chat template and processor config: Qwen2.5-VL's special tokens, at other ids.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json")
SPECIAL_IDS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
TEXT_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


@dataclass(frozen=True)
class VideoSpec:
    """One generated video: ``seconds`` long at ``fps``, ``height`` x ``width``, content drawn from ``seed``."""

    video_id: str
    seconds: float
    seed: int
    height: int = 720
    width: int = 1280
    fps: float = 30.0

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))


def video_specs(count: int, minutes: tuple[float, float], seed: int = 0, height: int = 720, width: int = 1280,
                fps: float = 30.0) -> list[VideoSpec]:
    """``count`` videos whose lengths spread evenly over ``minutes`` = (shortest, longest); ids ``bench000``..."""
    low, high = minutes
    if count < 1 or not 0 < low <= high:
        raise ValueError(f"need at least one video and 0 < shortest <= longest minutes (got {count}, {minutes}): "
                         "pass --videos N --minutes MIN MAX")
    lengths = np.linspace(low, high, count) if count > 1 else np.array([low])
    return [VideoSpec(f"bench{i:03d}", float(m) * 60, seed * 1000 + i, height, width, fps)
            for i, m in enumerate(lengths)]


def synthetic_frames(spec: VideoSpec) -> Iterator[np.ndarray]:
    """``spec.frames`` RGB frames (H, W, 3) uint8: a textured canvas (random low-frequency colour fields plus
    fine grain) panning on a slow Lissajous path, three coloured boxes moving across it, and a little
    per-frame grain (one of 8 fields, XOR-ed into the low bit), so the encoder has real motion and detail to
    code, as camera footage gives it, yet each frame costs a few milliseconds to draw."""
    rng = np.random.default_rng(spec.seed)
    height, width = spec.height, spec.width
    margin_y, margin_x = height // 4, width // 4
    canvas_h, canvas_w = height + 2 * margin_y, width + 2 * margin_x
    coarse = rng.integers(0, 256, (canvas_h // 16 + 2, canvas_w // 16 + 2, 3), dtype=np.uint8)
    canvas = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:canvas_h, :canvas_w].astype(np.int16)
    canvas = _box_blur(canvas, 9) + rng.integers(-12, 13, canvas.shape, dtype=np.int16)
    canvas = np.clip(canvas, 0, 255).astype(np.uint8)
    grain = rng.integers(0, 2, (8, height, width, 3), dtype=np.uint8)
    boxes = [(rng.integers(0, 256, 3, dtype=np.uint8), int(rng.integers(height // 10, height // 4)),
              rng.uniform(0.2, 1.0, 2), rng.uniform(0, 2 * math.pi, 2)) for _ in range(3)]
    period = max(spec.frames, 1)
    for t in range(spec.frames):
        phase = 2 * math.pi * t / period
        y = int(margin_y * (1 + math.sin(3 * phase)))
        x = int(margin_x * (1 + math.sin(2 * phase + 1)))
        frame = np.bitwise_xor(canvas[y : y + height, x : x + width], grain[t % len(grain)])
        for colour, side, speed, offset in boxes:
            top = int((height - side) * (0.5 + 0.5 * math.sin(speed[0] * t / spec.fps + offset[0])))
            left = int((width - side) * (0.5 + 0.5 * math.sin(speed[1] * t / spec.fps + offset[1])))
            frame[top : top + side, left : left + side] = colour
        yield frame


def _box_blur(image: np.ndarray, size: int) -> np.ndarray:
    """A ``size`` x ``size`` box filter over the first two axes (cumulative sums; edges clamped)."""
    pad = size // 2
    padded = np.pad(image.astype(np.int32), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    summed = padded.cumsum(0).cumsum(1)
    summed = np.pad(summed, ((1, 0), (1, 0), (0, 0)))
    h, w = image.shape[:2]
    total = (summed[size:size + h, size:size + w] - summed[:h, size:size + w] - summed[size:size + h, :w]
             + summed[:h, :w])
    return (total // (size * size)).astype(np.int16)


def write_one(spec: VideoSpec, folder: str, crf: int) -> dict[str, Any]:
    """Encode ``spec`` to ``folder/<video_id>.mp4`` (x264 through PyAV, ``data.video.write_video``); its
    size and time."""
    start = time.perf_counter()
    path = Path(folder) / f"{spec.video_id}.mp4"
    frames = write_video(path, synthetic_frames(spec), spec.fps, crf=crf)
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    return {"video_id": spec.video_id, "frames": frames, "seconds": spec.seconds, "encode_s": round(seconds, 2),
            "mbit_per_s": round(size * 8 / 1e6 / spec.seconds, 2), "bytes": size}


def videomme_rows(specs: list[VideoSpec], questions: int, seed: int = 0) -> list[dict[str, Any]]:
    """The parquet rows of the Video-MME annotation for ``specs``: ``questions`` multiple-choice questions per
    video, fields and vocabularies of the official release (lmms-eval's duration / domain / task lists)."""
    from lmms_eval.tasks.videomme.utils import CATEGORIES, SUB_CATEGORIES, TASK_CATEGORIES

    rng = np.random.default_rng(seed)
    words = ("red", "green", "blue", "yellow", "circle", "square", "moving", "still", "left", "right", "up", "down")
    rows = []
    for v, spec in enumerate(specs):
        duration = "short" if spec.seconds <= 120 else "medium" if spec.seconds <= 900 else "long"
        for q in range(questions):
            k = v * questions + q
            options = [words[i] for i in rng.choice(len(words), size=4, replace=False)]
            rows.append({
                "video_id": f"{v + 1:03d}", "duration": duration, "domain": CATEGORIES[v % len(CATEGORIES)],
                "sub_category": SUB_CATEGORIES[v % len(SUB_CATEGORIES)],
                "url": f"https://www.youtube.com/watch?v={spec.video_id}", "videoID": spec.video_id,
                "question_id": f"{v + 1:03d}-{q + 1}", "task_type": TASK_CATEGORIES[k % len(TASK_CATEGORIES)],
                "question": f"Which {options[0]} thing is seen most often in the video?",
                "options": [f"{letter}. {word}" for letter, word in zip(LETTERS, options)],
                "answer": LETTERS[int(rng.integers(4))],
            })
    return rows


def write_dataset(root: Path, specs: list[VideoSpec], questions: int, processes: int, crf: int = 23) -> dict[str, Any]:
    """The Video-MME layout under ``root/videomme``: ``data/<videoID>.mp4`` encoded by ``processes`` spawned
    processes, and the annotation parquet. Returns per-video results and the wall time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(root) / "videomme"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = sorted(specs, key=lambda s: -s.frames)  # longest first: the last ones to finish are short
    with multiprocessing.get_context("spawn").Pool(max(1, min(processes, len(jobs)))) as pool:
        videos = pool.starmap(write_one, [(spec, str(folder / "data"), crf) for spec in jobs])
    wall = time.perf_counter() - start
    annotation = folder / ANNOTATION
    annotation.parent.mkdir(parents=True, exist_ok=True)
    rows = videomme_rows(specs, questions)
    pq.write_table(pa.Table.from_pylist(rows), annotation)
    return {"videos": sorted(videos, key=lambda v: v["video_id"]), "questions": len(rows), "encode_wall_s":
            round(wall, 2), "processes": processes, "crf": crf, "specs": [asdict(s) for s in specs]}


def checkpoint_config(layers: int | None = None) -> dict[str, Any]:
    """``config.json`` fields of the benchmark checkpoint: Qwen2.5-VL-7B's (``flops.known_models``) with
    ``layers`` decoder layers (all 28 when None), 3D RoPE as the real checkpoint, and the special-token ids
    of the embedded tokenizer (its vocabulary is a 512-id subset of the 7B's 152,064 embedding rows)."""
    base = KNOWN_MODELS["qwen2.5-vl-7b"]
    embedded = json.loads((EMBEDDED_DIR / "config.json").read_text())
    text = {**base["text_config"], "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                                       "mrope_section": [16, 24, 24]},
            "max_position_embeddings": 128000, "rms_norm_eps": 1e-6, "hidden_act": "silu",
            **{name: embedded["text_config"][name] for name in TEXT_IDS}}
    if layers is not None:
        text["num_hidden_layers"] = int(layers)
    vision = {**base["vision_config"], "tokens_per_second": 2}
    return {"text_config": text, "vision_config": vision, "tie_word_embeddings": base["tie_word_embeddings"],
            **{name: embedded[name] for name in SPECIAL_IDS}}


def check_tokenizer(folder: Path, config: dict[str, Any]) -> None:
    """The tokenizer in ``folder`` maps the image / video / vision markers to the ids ``config`` names and fits
    in its vocabulary; a ``ValueError`` naming the mismatch otherwise."""
    vocab = json.loads((folder / "tokenizer.json").read_text())
    ids = {token["content"]: token["id"] for token in vocab["added_tokens"]}
    expected = {"<|image_pad|>": config["image_token_id"], "<|video_pad|>": config["video_token_id"],
                "<|vision_start|>": config["vision_start_token_id"], "<|vision_end|>": config["vision_end_token_id"]}
    wrong = {token: (ids.get(token), want) for token, want in expected.items() if ids.get(token) != want}
    if wrong:
        raise ValueError(f"tokenizer ids {{token: (tokenizer, config)}} differ: {wrong}; take the ids from the "
                         "tokenizer into the checkpoint config")
    largest = max(ids.values())
    if largest >= config["text_config"]["vocab_size"]:
        raise ValueError(f"tokenizer id {largest} is outside the vocabulary of {config['text_config']['vocab_size']}")


def write_checkpoint(folder: Path, layers: int | None, device: str = "cuda", seed: int = 0) -> dict[str, Any]:
    """Build the model of ``checkpoint_config(layers)`` with random bf16 weights directly on ``device``, save it
    (safetensors) with the embedded tokenizer, chat template and processor config. Returns step timings."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fields = checkpoint_config(layers)
    check_tokenizer(EMBEDDED_DIR, fields)
    timings: dict[str, Any] = {}
    start = time.perf_counter()
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(**fields)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    timings["build_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    model.save_pretrained(folder)
    timings["save_s"] = round(time.perf_counter() - start, 2)
    for name in TOKENIZER_FILES:
        shutil.copyfile(EMBEDDED_DIR / name, folder / name)
    timings["parameters"] = sum(p.numel() for p in model.parameters())
    timings["bytes"] = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    timings["layers"] = config.text_config.num_hidden_layers
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return timings


def run_setup(data_root: Path | None, checkpoint: Path | None, videos: int, minutes: tuple[float, float],
              questions: int, layers: int | None, processes: int | None = None, device: str = "cuda",
              crf: int = 23) -> dict[str, Any]:
    """The data root (when ``data_root`` is given) and the checkpoint (when ``checkpoint`` is given); what was
    made and how long each step took."""
    processes = processes or os.cpu_count() or 1
    result: dict[str, Any] = {}
    if data_root is not None:
        start = time.perf_counter()
        result["data_root"] = str(data_root)
        result["dataset"] = write_dataset(data_root, video_specs(videos, minutes), questions, processes, crf)
        result["dataset_s"] = round(time.perf_counter() - start, 2)
    if checkpoint is not None:
        start = time.perf_counter()
        result["checkpoint"] = str(checkpoint)
        result["checkpoint_steps"] = write_checkpoint(checkpoint, layers, device)
        result["checkpoint_s"] = round(time.perf_counter() - start, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--minutes", type=float, nargs=2, default=(2.0, 5.0))
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--layers", type=int, default=None, help="decoder layers (default: the 7B's 28)")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    result = run_setup(args.out / "data", args.out / "checkpoint", args.videos, tuple(args.minutes), args.questions,
                       args.layers, device=args.device)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
