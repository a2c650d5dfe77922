"""The fixture results tree (see ``results_fixture``), written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reporting.results_fixture import build_results_tree


@pytest.fixture(scope="session")
def results_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture results tree, written once per session."""
    return build_results_tree(tmp_path_factory.mktemp("results"))
