"""The package's layering, checked from the source (no imports run): every ``adaspark_eval`` import points
down ``LAYERS`` (or stays inside its own package), and no module imports another module's private
(underscore) name -- in the package, the timing scripts and the tests."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "adaspark_eval"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("config",),                              # every knob, validated; the one hash helper
    ("sparse",),                              # the method and every Triton kernel
    ("flops",),                               # FLOP accounting
    ("models",),                              # loading, placement, fused ops, processes, the sample memo
    ("data",),                                # video files, frame cache, decode-ahead workers, VideoNIAH generator
    ("datasets",),                            # Video-MME / MLVU / VideoNIAH adapters
    ("methods",),                             # AdaSpark and the peers on one runtime
    ("results",),                             # run folders
    ("lmms",),                                # the lmms-eval model class and tasks
    ("evaluation",),                          # run, sweep, summaries
    ("reporting", "inspection", "training"),  # tables and figures; per-layer inspection; the embedded model
    ("cli",),                                 # the commands (thin)
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str | None:
    """The top-level part of ``adaspark_eval.<part>...``, or None for other modules."""
    parts = module.split(".")
    return parts[1] if parts[0] == "adaspark_eval" and len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """Every absolute import of ``path``: (module, names imported from it, line), at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
    return found


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_every_package_is_in_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert parts == set(RANK), "add the new package to LAYERS (tests/test_architecture.py) at its place"


def test_imports_only_point_down() -> None:
    climbs = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part(_module_name(path))
        if source is None:
            continue
        for module, _, line in _imports(path):
            target = _part(module)
            if target is not None and target != source and RANK[target] >= RANK[source]:
                climbs.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({target} is not below {source})")
    assert not climbs, "\n".join(climbs)


def test_no_module_imports_a_private_name_of_another() -> None:
    scripts = {path.stem for path in (ROOT / "benchmarks").rglob("*.py")}  # imported by name beside each other
    private = []
    for folder in (PACKAGE, ROOT / "benchmarks", ROOT / "tests"):
        for path in sorted(folder.rglob("*.py")):
            for module, names, line in _imports(path):
                if module.split(".")[0] not in ("adaspark_eval", "benchmarks", *scripts):
                    continue
                hidden = [n for n in names if n.startswith("_") and not n.startswith("__")]
                parts = module.split(".")
                hidden += [module] if any(p.startswith("_") and not p.startswith("__") for p in parts) else []
                if hidden and module != _module_name(path):
                    private.append(f"{path.relative_to(ROOT)}:{line} imports {', '.join(hidden)} from {module}")
    assert not private, "\n".join(private)
