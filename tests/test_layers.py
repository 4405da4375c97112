"""The import graph is one-way: core ← infer ← train ← evaluate ← present ← studio ← cli, and has no cycle.

Every `import` in every module counts, also those inside functions, so a circle cannot hide behind a
deferred import. Imports inside functions are kept for optional heavy packages (torch, transformers,
ray, onnx, label-studio-sdk …), never for govfacts' own modules.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"govfacts": ROOT / "govfacts", "govfacts.infer": ROOT / "infer", "govfacts.train": ROOT / "train"}
LAYERS = ["core", "infer", "train", "evaluate", "present", "studio", "cli"]


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("infer", "train", "evaluate", "present", "studio", "cli"):
        return parts[1]
    return "core"


def modules() -> dict[str, Path]:
    out = {}
    for prefix, folder in FOLDERS.items():
        for f in sorted(folder.rglob("*.py")):
            rel = f.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([prefix, *parts])] = f
    return out


def imports_of(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(govfacts module, line, inside a function) of every import of `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []

    def visit(node, in_func):
        for child in ast.iter_child_nodes(node):
            f = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
            found = []
            for n in names:
                while n and n not in known:
                    n = n.rpartition(".")[0]
                if n and n.startswith("govfacts") and n not in found:
                    found.append(n)
            out.extend((n, child.lineno, f) for n in found)
            visit(child, f)

    visit(tree, False)
    return out


def graph():
    mods = modules()
    return mods, {m: imports_of(p, set(mods)) for m, p in mods.items()}


def test_every_import_points_down_or_sideways():
    mods, g = graph()
    upward = [f"{mods[m].relative_to(ROOT)}:{line} imports {n} ({layer(m)} → {layer(n)})"
              for m, deps in g.items() for n, line, _ in deps
              if LAYERS.index(layer(n)) > LAYERS.index(layer(m))]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycle():
    mods, g = graph()
    edges = {m: sorted({n for n, _, _ in deps if n != m and n in mods and not m.startswith(n + ".")})
             for m, deps in g.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def dfs(m):
        state[m] = 1
        stack.append(m)
        for n in edges[m]:
            if state.get(n) == 1:
                cycles.append(" → ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                dfs(n)
        stack.pop()
        state[m] = 2

    for m in edges:
        if m not in state:
            dfs(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_own_modules_are_imported_at_module_level():
    """A govfacts module imported inside a function is how a cycle hides; only the CLI's lazy
    `train.pretrain` (torch at import) and the optional Ray engine may be deferred; the tagger and ONNX
    Runtime modules import their heavy packages inside functions themselves."""
    allowed = {"govfacts.train.pretrain", "govfacts.infer.ray_engine"}
    mods, g = graph()
    deferred = [f"{mods[m].relative_to(ROOT)}:{line} imports {n} inside a function"
                for m, deps in g.items() for n, line, inside in deps if inside and n not in allowed]
    assert not deferred, "\n".join(deferred)


def test_layer_test_sees_a_planted_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from govfacts.cli.main import app\n", encoding="utf-8")
    mods = modules()
    deps = imports_of(bad, set(mods))
    assert deps == [("govfacts.cli.main", 2, True)]
    assert LAYERS.index(layer(deps[0][0])) > LAYERS.index(layer("govfacts.quantity"))
