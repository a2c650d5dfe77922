"""An endless stream of VideoNIAH training samples, encoded the way the evaluation encodes them.

Sample ``i`` is planned by the VideoNIAH generator with seed ``seed + i``. Its frames go to the
processor in memory with the settings the lmms-eval input path uses (all frames of a video of at most
``max_num_frames`` frames, frames within ``[min_pixels, max_pixels]``, the sampling fps in the video
metadata) and the ``videoniah`` task's prompt; a test checks that this gives the same tokens, grids and
temporal spacing as writing the mp4 and reading it through ``lmms.inputs.build_inputs``. The label is
the needle's name followed by ``<|im_end|>`` (see ``StreamSpec``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import IterableDataset, get_worker_info
from transformers import BatchFeature, Qwen2_5_VLProcessor
from transformers.video_utils import VideoMetadata

from adaspark_eval.datasets.videoniah import doc_to_text
from adaspark_eval.data.niah.generate import NiahSpec, Sample, annotate, plan, sample_frames

IGNORE = -100
TASK_FILE = Path(__file__).parents[1] / "tasks" / "videoniah" / "videoniah_local.yaml"  # the package link to tasks/


def task_prompt_kwargs(task_file: Path = TASK_FILE) -> dict[str, str]:
    """The task YAML's default ``lmms_eval_specific_kwargs`` (pre/post prompt); ``!function`` tags unread."""

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    config = yaml.load(task_file.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    return config["lmms_eval_specific_kwargs"]["default"]


OPEN_QUESTION = "\nName the object: its colour, then its shape."


@dataclass(frozen=True)
class StreamSpec:
    """What the stream generates: ``niah`` (its ``n``, ``seed`` and ``tries`` are set per sample), the
    first seed, the pixel bounds of the evaluation's video reading, and the share of samples asked as
    open questions instead of the task's multiple choice. Both are answered with the needle's name
    (``red star``): the task's parser reads an answer naming exactly one option as that option."""

    niah: NiahSpec
    seed: int
    min_pixels: int = 256 * 28 * 28
    max_pixels: int = 1605632
    open_share: float = 0.0


def plan_sample(spec: StreamSpec, index: int) -> tuple[Sample, dict[str, Any]]:
    """Sample ``index`` of the stream and its (single-try) annotation record; types take turns."""
    types = spec.niah.types
    niah = replace(spec.niah, n=1, seed=spec.seed + index, tries=1, types=(types[index % len(types)],))
    sample = plan(niah)[0]
    return sample, annotate(sample, niah.fps)[0]


def encode_frames(processor: Qwen2_5_VLProcessor, frames: np.ndarray, fps: float, prompt: str,
                  spec: StreamSpec) -> BatchFeature:
    """Inputs of one video (T, H, W, 3) uint8 sampled at ``fps`` and one question, batch of 1."""
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}],
        add_generation_prompt=True)
    metadata = VideoMetadata(total_num_frames=len(frames), fps=fps, height=frames.shape[1], width=frames.shape[2],
                             frames_indices=list(range(len(frames))))
    return processor(text=[text], videos=[frames], video_metadata=[metadata], do_sample_frames=False,
                     size={"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}, return_tensors="pt")


def training_example(processor: Qwen2_5_VLProcessor, spec: StreamSpec, index: int,
                     prompt_kwargs: dict[str, str]) -> dict[str, Any]:
    """Inputs of sample ``index`` with ``labels`` on the answer tokens only."""
    sample, doc = plan_sample(spec, index)
    frames = np.stack(list(sample_frames(sample, spec.niah.fps)))
    if np.random.default_rng([spec.seed, index, 1]).random() < spec.open_share:
        prompt, target = doc["question"] + OPEN_QUESTION, doc["gt"]
    else:
        prompt, target = doc_to_text(doc, prompt_kwargs), doc["gt"]
    inputs = encode_frames(processor, frames, spec.niah.fps, prompt, spec)
    answer = processor.tokenizer(target + "<|im_end|>", add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    input_ids = torch.cat([inputs["input_ids"][0], answer])
    labels = torch.full_like(input_ids, IGNORE)
    labels[-answer.numel():] = answer
    token_types = torch.cat([inputs["mm_token_type_ids"][0], torch.zeros_like(answer)])
    return {"input_ids": input_ids, "labels": labels, "mm_token_type_ids": token_types,
            "pixel_values_videos": inputs["pixel_values_videos"],
            "video_grid_thw": inputs["video_grid_thw"], "second_per_grid_ts": inputs["second_per_grid_ts"],
            "gold": doc["gt_option"], "options": doc["options"], "prompt_length": inputs["input_ids"].shape[1]}


class NiahStream(IterableDataset):
    """Samples ``start, start + 1, ...`` (worker ``w`` of ``k`` takes every ``k``-th); ``count=None`` is endless."""

    def __init__(self, processor: Qwen2_5_VLProcessor, spec: StreamSpec, start: int = 0,
                 count: int | None = None) -> None:
        self.processor, self.spec, self.start, self.count = processor, spec, start, count
        self.prompt_kwargs = task_prompt_kwargs()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        offset, stride = (worker.id, worker.num_workers) if worker else (0, 1)
        index = self.start + offset
        while self.count is None or index < self.start + self.count:
            yield training_example(self.processor, self.spec, index, self.prompt_kwargs)
            index += stride


def quiet_worker(worker_id: int) -> None:
    """DataLoader worker set-up: one thread each, so many workers do not oversubscribe the cores."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def collate(samples: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Right-pad ids, labels and token types to one batch; concatenate the videos' patches and grids.

    ``mm_token_type_ids`` (1 at image, 2 at video tokens) must reach the model: transformers builds
    Qwen2.5-VL's 3D (time, height, width) positions only when it is given."""
    length = max(s["input_ids"].numel() for s in samples)
    input_ids = torch.full((len(samples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), length), IGNORE, dtype=torch.long)
    token_types = torch.zeros((len(samples), length), dtype=torch.long)
    attention_mask = torch.zeros((len(samples), length), dtype=torch.long)
    for row, sample in enumerate(samples):
        n = sample["input_ids"].numel()
        input_ids[row, :n], labels[row, :n], attention_mask[row, :n] = sample["input_ids"], sample["labels"], 1
        token_types[row, :n] = sample["mm_token_type_ids"]
    return {
        "input_ids": input_ids, "labels": labels, "attention_mask": attention_mask, "mm_token_type_ids": token_types,
        "pixel_values_videos": torch.cat([s["pixel_values_videos"] for s in samples]),
        "video_grid_thw": torch.cat([s["video_grid_thw"] for s in samples]),
        "second_per_grid_ts": torch.cat([s["second_per_grid_ts"] for s in samples]),
        "gold": [s["gold"] for s in samples], "options": [s["options"] for s in samples],
        "prompt_length": [s["prompt_length"] for s in samples],
    }
