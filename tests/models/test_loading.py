import pytest
import torch

from adaspark_eval.models.loading import ModelNotFound, load_model, parse_dtype, resolve_checkpoint
from adaspark_eval.models.tiny import SPECIAL_TOKENS


def test_tiny_loads_with_the_real_special_tokens_and_template():
    loaded = load_model("tiny")
    tokenizer = loaded.processor.tokenizer
    assert all(tokenizer.convert_tokens_to_ids(t) != tokenizer.unk_token_id for t in SPECIAL_TOKENS)
    config = loaded.model.config
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    text = loaded.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Hi"}]}], add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|video_pad|><|vision_end|>Hi<|im_end|>\n<|im_start|>assistant\n")


def test_tiny_is_deterministic():
    a, b = load_model("tiny").model, load_model("tiny").model
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_saved_checkpoint_round_trips(tmp_path):
    loaded = load_model("tiny")
    loaded.model.save_pretrained(tmp_path)
    loaded.processor.save_pretrained(tmp_path)
    again = load_model(str(tmp_path))
    assert torch.equal(again.model.lm_head.weight, loaded.model.lm_head.weight)
    assert again.processor.tokenizer.convert_tokens_to_ids("<|video_pad|>") == loaded.model.config.video_token_id


def test_missing_model_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFound, match="models--Qwen--Qwen2.5-VL-7B-Instruct"):
        resolve_checkpoint("Qwen/Qwen2.5-VL-7B-Instruct")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_checkpoint(str(tmp_path / "empty"))


def test_cached_hub_name_resolves_to_its_snapshot(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snapshot = tmp_path / "models--Qwen--Qwen2.5-VL-3B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert resolve_checkpoint("Qwen/Qwen2.5-VL-3B-Instruct") == snapshot


def test_dtype_names():
    assert parse_dtype("bf16") is torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        parse_dtype("int3")
