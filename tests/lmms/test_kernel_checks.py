"""Kernels that cannot run here stop the lmms-eval class before its model loads (lmms-eval's own command line
has no ``adaspark-eval run`` in front of it). The note for a ``backend=fa4`` that never reaches flash-attn-4
rests on ``fa4.unexpressed``, tested in tests/sparse/test_kernels_fa4.py."""

import pytest

from adaspark_eval.config import AdaSparkConfig, ConfigError
from adaspark_eval.lmms.model import AdaSparkLMM, check_kernels


@pytest.mark.parametrize(("config", "message"), [
    (AdaSparkConfig(backend="triton"), "backend=triton runs Triton kernels, which need a CUDA GPU, not cpu"),
    (AdaSparkConfig(backend="fa4", select="cube"), "backend=fa4 needs flash-attn-4, which is not installed"),
    (AdaSparkConfig(attn_impl="fa4"), "attn_impl=fa4 needs flash-attn-4, which is not installed"),
])
def test_the_lmms_eval_class_refuses_kernels_it_cannot_run_before_loading(config, message, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ConfigError, match=message):
        AdaSparkLMM(pretrained="tiny", config=config, device="cpu")


def test_configs_that_can_run_here_pass_without_a_note(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert check_kernels(AdaSparkConfig(), "cpu") is None
    assert check_kernels(AdaSparkConfig(backend="reference"), "cpu") is None
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert check_kernels(AdaSparkConfig(backend="triton"), "cpu") is None
