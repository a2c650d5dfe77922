"""Named VideoNIAH settings: what the embedded model is trained on, and the offline demo set."""

from __future__ import annotations

from dataclasses import replace

from adaspark_eval.data.niah.generate import NiahSpec

# 8 s procedural haystacks at 1 fps of 448x448 frames (8 frames: 1,024 LLM tokens under the stock
# lmms-eval reading), one 2 s needle, retrieval of an inserted image or clip of a drawn object.
EMBEDDED_NIAH = NiahSpec(types=("ret_insert1", "ret_insert2"), lengths=(8.0,), size=(448, 448), fps=1.0,
                         duration=2.0)
# Training takes seeds from 0 and held-out checks from 1,000,000 (one sample per seed); the demo's
# seed lies past both, so no demo question was seen in training.
DEMO_NIAH = replace(EMBEDDED_NIAH, n=12, seed=2_000_000, tries=4)
