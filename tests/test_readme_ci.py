"""The README's test command and CI (.ci/run) install the same things and run the same tests."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("Set up and run the tests:", 1)[1]
    return re.search(r"```bash\n(.*?)\n```", block, re.S).group(1).strip()


def _steps(text: str) -> list[str]:
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln]


def test_readme_and_ci_install_the_same_extras_and_run_the_same_tests():
    readme = _readme_test_command()
    ci = _steps((REPO / ".ci" / "run").read_text(encoding="utf-8"))
    assert "bash scripts/install_test_extras.sh" in readme and "bash scripts/install_test_extras.sh" in ci
    assert readme.endswith("python -m pytest -q") and ci[-1] == "python -m pytest -q"
    # every pip install CI makes is one the README's command makes too (torch, the project, the script)
    ci_pips = [
        ln.replace("python -m pip install -q ", "").split("#")[0].strip() for ln in ci if "pip install" in ln
    ]
    ci_pips = [p for p in ci_pips if p != "--upgrade pip"]
    for p in ci_pips:
        assert p.replace('"', "") in readme.replace('"', ""), p
    script = (REPO / "scripts" / "install_test_extras.sh").read_text(encoding="utf-8")
    for pkg in ("spandrel", "lpips==", "DISTS_pytorch==", "chromium"):
        assert pkg in script, pkg
