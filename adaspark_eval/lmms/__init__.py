"""lmms-eval integration: the ``adaspark`` model (``model``), the local-data tasks (``task``).

lmms-eval finds the model through the entry point group ``lmms_eval.models`` (pyproject.toml), which
names ``manifests``; it imports nothing of lmms-eval at module level, so loading the entry point from
inside lmms-eval's own registry setup cannot import lmms-eval circularly.
"""

from __future__ import annotations

from typing import Any

MODEL_ID = "adaspark"


def manifests() -> list[Any]:
    """The ``ModelManifest`` of the ``adaspark`` chat model (lmms-eval calls this on start-up)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=MODEL_ID, chat_class_path="adaspark_eval.lmms.model.AdaSparkLMM")]
