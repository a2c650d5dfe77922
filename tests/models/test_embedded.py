"""The shipped niah-small answers held-out VideoNIAH questions right (seeds never used in training)."""

import torch

from adaspark_eval.data.niah.presets import EMBEDDED_NIAH
from adaspark_eval.data.niah.scoring import parse_choice
from adaspark_eval.models.loading import load_model
from adaspark_eval.training.niah_data import StreamSpec, training_example, task_prompt_kwargs


@torch.no_grad()
def test_embedded_model_answers_held_out_questions(one_torch_thread):
    loaded = load_model("niah-small")
    spec = StreamSpec(EMBEDDED_NIAH, seed=4_000_000)  # past training (0..) and held-out checks (1,000,000..)
    answers = []
    for index in range(4):  # two ret_insert1, two ret_insert2
        example = training_example(loaded.processor, spec, index, task_prompt_kwargs())
        length = example["prompt_length"]
        inputs = {key: example[key] for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")}
        output = loaded.model.generate(input_ids=example["input_ids"][None, :length],
                                       mm_token_type_ids=example["mm_token_type_ids"][None, :length],
                                       **inputs, max_new_tokens=16, do_sample=False)
        text = loaded.processor.tokenizer.decode(output[0, length:], skip_special_tokens=True)
        answers.append((parse_choice(text, example["options"]), example["gold"]))
    assert all(parsed == gold for parsed, gold in answers), answers
