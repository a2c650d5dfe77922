"""The in-memory training encoder gives what the evaluation's mp4 path gives."""

import numpy as np
import torch

from adaspark_eval.data.niah.generate import NiahSpec, render
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.lmms.inputs import build_inputs
from adaspark_eval.models.tiny import build_processor
from adaspark_eval.training.niah_data import (IGNORE, StreamSpec, collate, encode_frames, plan_sample,
                                              task_prompt_kwargs, training_example)
from adaspark_eval.datasets.videoniah import doc_to_text
from adaspark_eval.data.niah.generate import sample_frames

SPEC = StreamSpec(NiahSpec(types=("ret_insert1",), lengths=(8.0,), size=(224, 224), fps=1.0, duration=2.0), seed=5,
                  min_pixels=224 * 224, max_pixels=224 * 224)


def test_in_memory_encoding_matches_the_evaluation_path(tmp_path):
    processor = build_processor()
    sample, doc = plan_sample(SPEC, 0)
    prompt = doc_to_text(doc, task_prompt_kwargs())
    direct = encode_frames(processor, np.stack(list(sample_frames(sample, 1.0))), 1.0, prompt, SPEC)
    render(sample, tmp_path, 1.0)
    messages = [{"role": "user", "content": [{"type": "video", "url": str(tmp_path / sample.video)},
                                             {"type": "text", "text": prompt}]}]
    exact, _ = build_inputs(processor, messages, VideoSettings(min_pixels=224 * 224, max_pixels=224 * 224))
    assert torch.equal(direct["input_ids"], exact["input_ids"])
    assert torch.equal(direct["video_grid_thw"], exact["video_grid_thw"])
    assert torch.equal(direct["mm_token_type_ids"], exact["mm_token_type_ids"])  # 3D RoPE positions need them
    assert torch.equal(torch.as_tensor(direct["second_per_grid_ts"]), torch.as_tensor(exact["second_per_grid_ts"]))
    # pixels differ only by the H.264 round trip (normalised units)
    assert (direct["pixel_values_videos"] - exact["pixel_values_videos"]).abs().mean() < 0.1


def test_types_take_turns():
    spec = StreamSpec(NiahSpec(types=("ret_insert1", "ret_insert2"), lengths=(4.0,), size=(112, 112), fps=1.0,
                               duration=1.0), seed=0)
    assert [plan_sample(spec, i)[1]["type"] for i in range(4)] == ["ret_insert1", "ret_insert2"] * 2


def test_labels_cover_only_the_answer_and_batches_pad():
    processor = build_processor()
    examples = [training_example(processor, SPEC, i, task_prompt_kwargs()) for i in range(2)]
    for example in examples:
        answer = example["labels"][example["labels"] != IGNORE]
        assert processor.tokenizer.decode(answer) == example["options"]["ABCD".index(example["gold"])] + "<|im_end|>"
    for example in examples:
        assert int((example["mm_token_type_ids"] == 2).sum()) == int(example["video_grid_thw"].prod()) // 4
    batch = collate(examples, processor.tokenizer.pad_token_id)
    assert batch["mm_token_type_ids"].shape == batch["input_ids"].shape
    assert batch["input_ids"].shape[0] == 2 and batch["video_grid_thw"].shape == (2, 3)
    assert batch["attention_mask"].sum() == sum(e["input_ids"].numel() for e in examples)
