import pytest

from adaspark_eval.config import AdaSparkConfig, ConfigError, parse_bool


def test_defaults_follow_method():
    cfg = AdaSparkConfig()
    assert (cfg.p, cfg.cube, cfg.select, cfg.text_queries, cfg.text_keys) == (0.8, (4, 4, 4), "token", "dense", "all")
    assert (cfg.ffn_group, cfg.ffn_score, cfg.compensation) == ("cube", "l1", "mean")
    assert cfg.attn_p == cfg.ffn_p == 0.8


def test_overrides_and_string_forms():
    cfg = AdaSparkConfig.from_dict({"p": "0.7", "p_ffn": "0.9", "cube": "2x3x4", "dense_layers": "0,3",
                                    "attention": "false", "fixed_ratio": "none"})
    assert (cfg.attn_p, cfg.ffn_p, cfg.cube, cfg.dense_layers, cfg.attention) == (0.7, 0.9, (2, 3, 4), (0, 3), False)
    assert AdaSparkConfig.from_dict({"cube": "2"}).cube == (2, 2, 2)


@pytest.mark.parametrize(
    "values, knob",
    [({"p": 0}, "p"), ({"p": 1.5}, "p"), ({"p_attn": -0.1}, "p_attn"), ({"cube": (4, 0, 4)}, "cube"),
     ({"select": "block"}, "select"), ({"ffn_score": "l2"}, "ffn_score"), ({"fixed_ratio": 2.0}, "fixed_ratio"),
     ({"compensation": "median"}, "compensation"), ({"ffn_tau": 0}, "ffn_tau"), ({"p": "high"}, "p")],
)
def test_invalid_values_name_the_knob(values, knob):
    with pytest.raises(ConfigError, match=f"^{knob}="):
        AdaSparkConfig.from_dict(values)


def test_unknown_knob():
    with pytest.raises(ConfigError, match="unknown AdaSpark knob"):
        AdaSparkConfig.from_dict({"q": 0.5})


def test_key_is_stable_and_config_sensitive():
    assert AdaSparkConfig(p=0.8).key() == AdaSparkConfig.from_dict({"p": "0.8"}).key()
    assert AdaSparkConfig(p=0.8).key() != AdaSparkConfig(p=0.7).key()
    assert AdaSparkConfig(query_chunk=7).key() == AdaSparkConfig().key()
    assert AdaSparkConfig(backend="fa4").key() == AdaSparkConfig().key()  # the same kept sets, bf16 rounding
    assert AdaSparkConfig(attn_impl="fa4").key() != AdaSparkConfig().key()  # another dense kernel


def test_keys_from_before_the_attn_impl_knob_stay_valid():
    """attn_impl=sdpa (the default) is left out of the key: these hashes were written before the knob existed."""
    assert AdaSparkConfig().key() == "bc04b8c350a3"
    assert AdaSparkConfig(p=0.5).key() == "9a6d198bcc7a"
    assert AdaSparkConfig.from_dict(AdaSparkConfig(cube=(2, 2, 2)).to_dict()) == AdaSparkConfig(cube=(2, 2, 2))


def test_yes_no_settings_read_text_and_refuse_anything_else():
    assert parse_bool("true") and parse_bool(True) and parse_bool(" On ") and not parse_bool("0")
    with pytest.raises(ValueError, match="not a yes/no value"):
        parse_bool("maybe")
