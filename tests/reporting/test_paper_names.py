"""Two configs that differ only in how videos were read are told apart in the paper's tables (``AdaSpark
p=0.8 (16 frames)`` / ``(32 frames)``), not both labelled ``AdaSpark p=0.8``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from adaspark_eval.reporting.load import load_results
from adaspark_eval.reporting.paper import main_table


def test_configs_differing_in_frames_get_distinct_names(results_tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "results"
    shutil.copytree(results_tree, root)
    before = list(main_table(load_results(root), [0.8]).index)
    assert before == ["Dense", "AdaSpark p=0.8"]
    source = next(path.parent for path in root.rglob("summary.json")
                  if (s := json.loads(path.read_text()))["method"] == "adaspark" and s["config"]["p"] == 0.8
                  and s["config"]["cube"] == [4, 4, 4] and s["config"].get("fixed_ratio") is None)
    original = json.loads((source / "summary.json").read_text())
    original["video"] = {"max_num_frames": 32, "fps": None, "min_pixels": 3136, "max_pixels": 15680}
    (source / "summary.json").write_text(json.dumps(original))  # as a run writes it (the fixture has none)
    copy = root / "fewer-frames"
    shutil.copytree(source, copy)
    summary = json.loads((copy / "summary.json").read_text())
    old_key, new_key = summary["config_key"], summary["config_key"] + "f16"
    summary.update(config_key=new_key, video={**summary["video"], "max_num_frames": 16})
    (copy / "summary.json").write_text(json.dumps(summary))
    records = (copy / "samples.jsonl").read_text().replace(old_key, new_key)
    (copy / "samples.jsonl").write_text(records)
    names = list(main_table(load_results(root), [0.8]).index)
    assert names[0] == "Dense" and sorted(names[1:]) == ["AdaSpark p=0.8 (16 frames)", "AdaSpark p=0.8 (32 frames)"]
