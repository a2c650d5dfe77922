"""``--help`` stays light: importing the CLI and building every command, with its flags and help, imports none of
the heavy libraries (they load inside the functions that run); every ``--help`` exits 0; and the values the CLI
writes down because their homes import those libraries equal their homes'."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest

ROOT = Path(__file__).parents[2]
HEAVY = ("torch", "transformers", "lmms_eval", "fvcore", "decord", "av", "qwen_vl_utils", "matplotlib", "pandas",
         "datasets")

# in a fresh interpreter: build every command (its flags), ask each for --help, then list the heavy modules loaded
PROBE = """
import json, sys
import typer.main
from typer.testing import CliRunner
from adaspark_eval.cli.main import app

def paths(command, path):
    yield path, [param.name for param in command.params]
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, [*path, name])

found = dict((" ".join(path), params) for path, params in paths(typer.main.get_command(app), []))
exits = {path: CliRunner().invoke(app, [*path.split(), "--help"]).exit_code for path in found}
print(json.dumps({"params": found, "exits": exits, "heavy": [m for m in HEAVY if m in sys.modules]}))
"""


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    done = _python("-c", f"HEAVY = {HEAVY!r}\n{PROBE}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_building_every_command_and_its_help_imports_no_heavy_library(probe: dict[str, Any]) -> None:
    assert {"run", "sweep", "inspect", "flops", "data check", "niah generate", "report table", "report paper",
            "report plot", "cache info", "cache clear"} <= set(probe["params"])
    assert "task" in probe["params"]["run"] and "p" in probe["params"]["sweep"]
    assert probe["heavy"] == []


def test_every_help_exits_0(probe: dict[str, Any]) -> None:
    assert {path: code for path, code in probe["exits"].items() if code != 0} == {}


def test_python_m_entry_point_shows_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    done = _python("-m", "adaspark_eval.cli.main", "run", "--help")
    assert done.returncode == 0, done.stderr
    assert "--num-processes" in done.stdout
    assert "[gpu]" in done.stdout  # brackets in help are shown, not taken as markup


def test_values_written_in_the_cli_equal_their_homes() -> None:
    from adaspark_eval.cli import common, report_cmd, run_cmd
    from adaspark_eval.data import frame_cache
    from adaspark_eval.datasets import DATA_ROOT_ENV
    from adaspark_eval.methods import METHODS, SETTINGS
    from adaspark_eval.reporting import render

    assert common.DATA_ROOT_ENV == DATA_ROOT_ENV
    assert run_cmd.METHOD_NAMES == tuple(METHODS)
    flags = {f.name for f in dataclasses.fields(run_cmd.RunOptions) if f.metadata.get("setting")}
    assert flags == set(SETTINGS), "every method setting is a flag of run and sweep, and only those"
    assert run_cmd.DEFAULT_MAX_GB == frame_cache.DEFAULT_MAX_GB
    assert get_args(report_cmd.Format) == get_args(render.Format)


def test_user_errors_cover_the_package_errors_a_user_can_fix() -> None:
    from adaspark_eval.cli.common import USER_ERRORS
    from adaspark_eval.config import ConfigError
    from adaspark_eval.data.video import VideoError
    from adaspark_eval.datasets import DatasetMissing, UnknownTask
    from adaspark_eval.models.loading import ModelNotFound
    from adaspark_eval.reporting.load import NoRunsError

    for error in (ConfigError, VideoError, UnknownTask, ModelNotFound, DatasetMissing, NoRunsError):
        assert issubclass(error, USER_ERRORS), error
