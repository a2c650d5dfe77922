"""``adaspark-eval niah generate`` through the real app."""

import json

from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.data.niah import ANNOTATION_FILE
from adaspark_eval.data.video import probe_video


def test_generate_writes_videos_and_annotation(tmp_path):
    args = ["niah", "generate", "--out", str(tmp_path), "--n", "2", "--seed", "1", "--length", "3s", "--fps", "4",
            "--resolution", "64x48", "--duration", "0.5", "--depth", "0.5", "--types", "ret_edit1,cnt_insert1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / ANNOTATION_FILE).read_text())
    assert [r["type"] for r in records] == ["ret_edit1"] * 4 + ["cnt_insert1"] * 4
    info = probe_video(tmp_path / records[0]["video"])
    assert (info.frames, info.fps, info.height, info.width) == (12, 4.0, 48, 64)
    assert records[0]["needle_time"] == [1.25] and records[0]["depth"] == 0.5
    assert ANNOTATION_FILE in result.stdout


def test_bad_input_is_one_line_naming_the_fix(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for flags, message in [(["--depth", "2"], "must lie in [0, 1]"), (["--haystack", str(empty)], "holds no videos"),
                           (["--resolution", "64by48"], "is not WxH"), (["--length", "soon"], "is not a duration"),
                           (["--types", "find"], "unknown type 'find'")]:
        result = CliRunner().invoke(app, ["niah", "generate", "--out", str(tmp_path / "out"), *flags])
        assert result.exit_code == 2, flags
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
