"""Results keys of the lmms-eval model: what changes them."""

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.lmms.model import run_key


def test_fused_ops_get_their_own_key_and_plain_runs_keep_theirs():
    config, video = AdaSparkConfig(p=0.8), VideoSettings(32, None, 3136, 15680)
    plain = run_key(config, "tiny", video, "bfloat16")
    assert run_key(config, "tiny", video, "bfloat16", fused_ops=False) == plain
    assert run_key(config, "tiny", video, "bfloat16", fused_ops=True) != plain


def test_the_graph_decode_loop_gets_its_own_key_and_plain_runs_keep_theirs():
    config, video = AdaSparkConfig(p=0.8), VideoSettings(32, None, 3136, 15680)
    plain = run_key(config, "tiny", video, "bfloat16")
    assert run_key(config, "tiny", video, "bfloat16", decode="generate") == plain
    assert run_key(config, "tiny", video, "bfloat16", decode="graph") != plain
