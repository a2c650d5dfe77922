import json

import pytest
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.data.video import write_video
from tests.conftest import random_video


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    write_video(path, random_video(3, 16, 112, 140), fps=8)
    return path


def test_inspect_json(video):
    result = CliRunner().invoke(app, ["inspect", "--video", str(video), "--p", "0.5", "--cube", "2x2x2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["max_abs_logit_diff"] > 0 and report["kl"] >= 0
    assert len(report["layers"]) == 4
    for row in report["layers"]:
        assert 0 < row["kept_cube_fraction"] < 1 and 0 < row["ffn_active_fraction"] < 1


def test_inspect_at_p_one_is_exact(video):
    result = CliRunner().invoke(app, ["inspect", "--video", str(video), "--p", "1", "--json"])
    report = json.loads(result.stdout)
    assert report["max_abs_logit_diff"] == 0 and report["kl"] == 0


@pytest.mark.parametrize(
    "args, message",
    [(["--p", "1.5"], "p=1.5 is outside (0, 1]"), (["--cube", "0x4x4"], "cube="),
     (["--select", "block"], "select='block'")],
)
def test_bad_knobs_are_one_line_errors(video, args, message):
    result = CliRunner().invoke(app, ["inspect", "--video", str(video), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_missing_and_corrupt_video(tmp_path):
    result = CliRunner().invoke(app, ["inspect", "--video", str(tmp_path / "none.mp4")])
    assert result.exit_code == 2 and "does not exist" in result.output
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(app, ["inspect", "--video", str(bad)])
    assert result.exit_code == 2 and "cannot be decoded" in result.output
