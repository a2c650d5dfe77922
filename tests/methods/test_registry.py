"""The registry: names, settings from text, one-line errors naming the fix, stable keys, report labels."""

from __future__ import annotations

import pytest

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.methods import METHODS, SETTINGS, make_method, split_settings
from adaspark_eval.reporting.labels import config_label, flat_knobs


def test_every_method_is_registered_with_defaults() -> None:
    assert list(METHODS) == ["adaspark", "dense", "topk", "window", "fastv", "frames", "xattention", "flexprefill",
                             "visionzip", "dycoke"]
    assert {k: v for k, v in SETTINGS.items() if v in ("window", "fastv", "frames", "xattention", "flexprefill")} == {
        "window": "window", "fastv_layer": "fastv", "fastv_keep": "fastv", "frame_budget": "frames",
        "xattn_threshold": "xattention", "xattn_stride": "xattention", "xattn_block": "xattention",
        "flex_gamma": "flexprefill", "flex_tau": "flexprefill", "flex_min_budget": "flexprefill", "flex_block": "flexprefill"}
    assert make_method("visionzip").settings() == {"visionzip_keep": 0.333, "visionzip_contextual": 0.15625}
    assert make_method("dycoke").settings() == {"dycoke_window": 4, "dycoke_merge": 0.7, "dycoke_threshold": -1.0,
                                                "dycoke_layer": 3, "dycoke_prune": 0.7, "dycoke_refresh": 0.9}
    assert make_method("fastv").settings() == {"fastv_layer": 2, "fastv_keep": 0.5}


def test_settings_from_text_and_keys() -> None:
    method = make_method("fastv", {"fastv_layer": "3", "fastv_keep": "0.25"})
    assert method.settings() == {"fastv_layer": 3, "fastv_keep": 0.25}
    assert method.key() == make_method("fastv", {"fastv_layer": 3, "fastv_keep": 0.25}).key()
    assert method.key() != make_method("fastv", {"fastv_layer": 3}).key() != make_method("adaspark").key()


@pytest.mark.parametrize("name, settings, message", [
    ("sparse", {}, "unknown method 'sparse': choose from adaspark, dense, topk, window, fastv, frames"),
    ("window", {"fastv_keep": "0.5"}, "fastv_keep is a setting of method fastv, not window: pass --method fastv"),
    ("fastv", {"fastv_layer": "two"}, "fastv_layer='two' is not a number: pass e.g. fastv_layer=2"),
    ("xattention", {"xattn_block": "100"}, "xattn_block=100 is not a positive multiple of xattn_stride=16: pass e.g."),
    ("flexprefill", {"flex_gamma": "0"}, r"flex_gamma=0.0 is outside \(0, 1\]: pass e.g. flex_gamma=0.5"),
])
def test_bad_input_is_one_line_naming_the_fix(name, settings, message) -> None:
    with pytest.raises(ConfigError, match=message):
        make_method(name, settings)


def test_split_settings() -> None:
    assert split_settings({"p": "0.8", "window": "2", "device": "cpu"}) == ({"window": "2"}, {"p": "0.8", "device": "cpu"})


def test_knobs_each_method_runs_with() -> None:
    knobs = AdaSparkConfig(p=0.6, cube=(2, 2, 2), fixed_ratio=0.4, query_chunk=64)
    dense = make_method("dense").config(knobs)
    assert dense == AdaSparkConfig(attention=False, ffn=False) and dense.query_chunk == 64
    assert make_method("window").config(knobs) == AdaSparkConfig(cube=(2, 2, 2), attention=False, ffn=False)
    assert make_method("topk").config(knobs) == AdaSparkConfig(cube=(2, 2, 2), fixed_ratio=0.4)
    assert make_method("adaspark").config(knobs) is knobs
    for name in METHODS:  # idempotent: a configured run can be configured again
        method = make_method(name)
        assert method.config(method.config(knobs)) == method.config(knobs)
    with pytest.raises(ConfigError, match="pass --fixed-ratio R"):
        make_method("topk").config(AdaSparkConfig())


@pytest.mark.parametrize("name, settings, label", [
    ("window", {"window": 2}, "window window=2"),
    ("fastv", {"fastv_keep": 0.3}, "fastv fastv_keep=0.3"),  # settings at their defaults are left out, as knobs
    ("frames", {"frame_budget": 0.25}, "frames frame_budget=0.25"),
    ("frames", {}, "frames"),
    ("topk", {}, "topk fixed_ratio=0.4"),
    ("xattention", {"xattn_stride": 8}, "xattention xattn_stride=8"),
    ("flexprefill", {"flex_gamma": 0.8}, "flexprefill flex_gamma=0.8"),
    ("dycoke", {"dycoke_merge": 0.5, "dycoke_prune": 0.0}, "dycoke dycoke_merge=0.5 dycoke_prune=0.0"),
])
def test_reports_label_runs_by_their_settings(name, settings, label) -> None:
    method = make_method(name, settings)
    described = method.describe(method.config(AdaSparkConfig(fixed_ratio=0.4)))
    assert config_label(name, flat_knobs(described)) == label
