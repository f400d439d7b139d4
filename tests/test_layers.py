"""The package's layers: every import inside vidapter/ (module level or inside a function) points to the same layer
or a lower one, so no import cycle can form. Read from the source with ast: nothing is imported to check it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vidapter"

# lowest first; a module belongs to the first layer one of whose prefixes names it
LAYERS = [
    (
        "foundations",
        [
            "vidapter.version",
            "vidapter.errors",
            "vidapter.config",
            "vidapter.files",
            "vidapter.dist",
            "vidapter.checkpoint",
        ],
    ),
    ("data", ["vidapter.data"]),
    ("models", ["vidapter.models"]),
    ("adapters", ["vidapter.adapters"]),
    ("the classifier", ["vidapter.classifier"]),
    (
        "running",
        [
            "vidapter.runtime",
            "vidapter.optim",
            "vidapter.log",
            "vidapter.loop",
            "vidapter.evaluation",
            "vidapter.engine",
            "vidapter.presets",
            "vidapter.summary",
            "vidapter.official",
            "vidapter.zeroshot",
        ],
    ),
    ("interface", ["vidapter.cli", "vidapter.demo", "vidapter.__main__", "vidapter"]),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _layer(module: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py")


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """vidapter modules imported anywhere in the file (``from vidapter.x import y`` names y when y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vidapter":
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
            found |= subs or {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "vidapter"}
    return found


def test_every_import_points_down_or_sideways():
    modules = _modules()
    upward = []
    for name, path in sorted(modules.items()):
        for target in sorted(_imports(path, modules)):
            if name != "vidapter" and target == "vidapter":
                upward.append(f"{name} imports the package root")
            elif _layer(target) > _layer(name):
                upward.append(f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)
