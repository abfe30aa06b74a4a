"""The package's shape: no import cycles (function-local imports included), small modules, one home for the
device rule, a bottom imaging layer and a leaf model registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "srlab"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """srlab modules that ``name`` imports anywhere in its body (module level, functions, TYPE_CHECKING).

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module, else ``a.b``. Importing
    ``P.m`` from outside package ``P`` also runs ``P/__init__``, so it adds an edge to ``P`` as well (but not
    to the root ``srlab`` package, which every import runs first and whose own imports are function-local).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                targets.add(sub if sub in known else mod)
    out: set[str] = set()
    for t in targets:
        while t and t not in known:  # `import srlab.x.y` of a non-module attribute path
            t = t.rpartition(".")[0]
        if not t or not t.startswith("srlab"):
            continue
        out.add(t)
        parts = t.split(".")
        for i in range(2, len(parts)):
            parent = ".".join(parts[:i])
            if parent in known and not (name == parent or name.startswith(parent + ".")):
                out.add(parent)
    out.discard(name)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {n: _imports(n, p, known) for n, p in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _path(graph: dict[str, set[str]], comp: list[str]) -> str:
    """One concrete cycle inside a component, for the failure message."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    chain = [v]
                    while chain[-1] != start:
                        chain.append(prev[chain[-1]])
                    return " -> ".join(reversed(chain)) + f" -> {start}"
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return ", ".join(comp)


def test_the_checker_finds_a_cycle_through_a_function_local_import(tmp_path):
    a = tmp_path / "srlab" / "a.py"
    a.parent.mkdir()
    a.write_text("def f():\n    from srlab import b\n")
    (tmp_path / "srlab" / "b.py").write_text("from srlab.a import f\n")
    known = {"srlab", "srlab.a", "srlab.b"}
    g = {"srlab.a": _imports("srlab.a", a, known), "srlab.b": _imports("srlab.b", a.parent / "b.py", known)}
    assert g == {"srlab.a": {"srlab.b"}, "srlab.b": {"srlab.a"}}
    assert _cycles(g) == [["srlab.a", "srlab.b"]]


def test_no_import_cycles_counting_function_local_imports():
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_path(graph, c) for c in cycles)


def test_no_module_over_500_lines():
    big = {
        n: len(p.read_text(encoding="utf-8").splitlines())
        for n, p in _modules().items()
        if len(p.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_cuda_availability_is_asked_in_runtime_only():
    users = [
        str(p.relative_to(SRC))
        for p in PKG.rglob("*.py")
        if "cuda.is_available" in p.read_text(encoding="utf-8") and p.name != "runtime.py"
    ]
    assert not users, f"torch.cuda.is_available outside srlab/runtime.py: {users}"


@pytest.mark.parametrize("layer", ["srlab.imaging"])
def test_imaging_is_the_bottom_layer(layer):
    graph = _graph()
    allowed = {"srlab.errors", "srlab.atomic"}  # the two leaves every file writer shares
    bad = {
        m: sorted(t for t in deps if not (t == layer or t.startswith(layer + ".")) and t not in allowed)
        for m, deps in graph.items()
        if m == layer or m.startswith(layer + ".")
    }
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, f"{layer} imports other srlab modules: {bad}"


def test_model_registry_is_a_leaf():
    graph = _graph()
    assert graph["srlab.models.registry"] <= {"srlab.errors"}, graph["srlab.models.registry"]


def test_duplicate_model_names_are_refused():
    from srlab.models import registry

    with pytest.raises(ValueError, match="already registered"):
        registry.register_arch("srcnn")(lambda **kw: None)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_preset("srcnn-955-x2", "srcnn")
    assert "srcnn" in registry.ARCHS and registry.ARCHS["srcnn"] is not None


def test_nothing_outside_the_command_line_imports_it():
    # the CLI is the top layer: the library's rules (output names, overwrites, options) live below it, so a
    # service or a Python caller gets them without argparse; srlab.__main__ is the entry point that runs it
    graph = _graph()
    bad = {
        m: sorted(t for t in deps if t == "srlab.cli" or t.startswith("srlab.cli."))
        for m, deps in graph.items()
        if not (m == "srlab.cli" or m.startswith("srlab.cli.")) and m != "srlab.__main__"
    }
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, f"modules outside srlab.cli import it: {bad}"
    assert "srlab.cli.upscale" in graph and "srlab.inference.outputs" in graph["srlab.cli.upscale"]
