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


# --------------------------------------------------------------------------------------------- families
# Builders registered without a family record: models/discriminators.py is edited on another branch; the
# lead folds it into a record at merge.
_BARE_BUILDERS = {"vgg_discriminator", "unet_discriminator"}


def test_every_registered_family_has_a_complete_record():
    import srlab.models  # noqa: F401
    from srlab.models import registry

    assert {"srcnn", "rrdbnet", "srvgg", "study_rrdbnet", "interpolation", "resized", "vgg19"} <= set(
        registry.FAMILIES
    )
    for fam, rec in registry.FAMILIES.items():
        assert rec.family == fam and not rec.missing(), (fam, rec.missing())
        for p in rec.presets:  # every preset builds through its own family
            assert p.arch in rec.builders and registry.PRESETS[p.name][0] == p.arch, p.name
        for name in rec.names:
            assert registry.family_of(name) is rec, name
    owned = {n for rec in registry.FAMILIES.values() for n in rec.builders}
    assert set(registry.ARCHS) - owned == _BARE_BUILDERS
    names = [lay.name for lay in registry.all_layouts()]
    assert len(names) == len(set(names)) and {"rrdb-basicsr", "srvgg", "srcnn", "study-rrdbnet"} <= set(names)


def test_weight_pointers_and_weight_tables_agree():
    """Each family says where its weights come from; every zoo / ncnn / shipped name is claimed by exactly
    the family that builds it (a zoo entry's ``arch`` belongs to the family that points at it)."""
    import srlab.models  # noqa: F401
    from srlab.models import registry
    from srlab.weights.ncnn import PACKAGE_MODELS
    from srlab.weights.shipped import SHIPPED
    from srlab.weights.zoo import ZOO

    pointers = [p for rec in registry.FAMILIES.values() for p in rec.weights]
    assert len(pointers) == len(set(pointers))
    tables = {"zoo": ZOO, "ncnn": PACKAGE_MODELS, "shipped": SHIPPED}
    assert set(pointers) == {f"{t}:{n}" for t, table in tables.items() for n in table}
    for n, e in ZOO.items():
        assert registry.weights_family(f"zoo:{n}") is registry.family_of(e.arch), n


def test_engine_hints_come_from_the_registry():
    import srlab.models  # noqa: F401
    from srlab.inference.engine import ort_faster_on_cpu
    from srlab.models import registry
    from srlab.models.rrdbnet import RRDBNet

    assert ort_faster_on_cpu("rrdbnet") and ort_faster_on_cpu("srcnn") and not ort_faster_on_cpu("bicubic")
    assert not ort_faster_on_cpu("no-such-arch")
    m = RRDBNet(scale=2, num_block=2, num_feat=8, num_grow_ch=4)
    assert len(registry.fusable_blocks(m)) == 6 and registry.set_fused_blocks(m, True) == 6
    assert all(b.fused for b in registry.fusable_blocks(m))
    assert registry.fusable_blocks(registry.build_model("srcnn-955-x2")[0]) == []


# Modules outside srlab/models that still test an architecture name; each with why.
_FAMILY_TEST_ALLOWED = {
    "srlab/export.py": "SRCNN's graph is forward_upsampled (export.py is owned by the export work)",
    "srlab/study/plan.py": "the study's plan picks its own rows by architecture (owned by the study work)",
}


def _family_strings() -> set[str]:
    import srlab.models  # noqa: F401
    from srlab.models import registry

    out = set()
    for rec in registry.FAMILIES.values():
        if rec.purpose in ("interpolation", "features"):
            # 'bicubic' / 'bilinear' are also resize methods, degradations and alpha modes; 'vgg19' is also
            # the zoo name the perceptual-loss options take
            continue
        out |= {rec.family, *rec.names, *(lay.name for lay in rec.layouts)}
    return out


def _strings_in(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _family_conditions(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            found = _strings_in(node) & names
        elif isinstance(node, ast.match_case):
            found = _strings_in(node.pattern) & names
        else:
            continue
        hits += [
            f"{path.relative_to(SRC)}:{node.lineno if hasattr(node, 'lineno') else '?'} {n!r}" for n in found
        ]
    return hits


def test_the_family_condition_checker_finds_one(tmp_path):
    p = tmp_path / "srlab" / "x.py"
    p.parent.mkdir()
    p.write_text(
        "def f(m):\n    if m.arch == 'rrdbnet':\n        return 1\n    return m.arch in ('srvgg',)\n"
    )
    global SRC
    old, SRC = SRC, tmp_path
    try:
        hits = _family_conditions(p, _family_strings())
    finally:
        SRC = old
    assert len(hits) == 2 and "'rrdbnet'" in hits[0] and "'srvgg'" in hits[1]


def test_no_module_outside_models_tests_a_family_name():
    names = _family_strings()
    hits = []
    for p in sorted(PKG.rglob("*.py")):
        rel = str(p.relative_to(SRC))
        if rel.startswith("srlab/models/") or rel in _FAMILY_TEST_ALLOWED:
            continue
        hits += _family_conditions(p, names)
    assert not hits, "ask srlab.models.registry instead of naming a family:\n" + "\n".join(hits)
