"""One device rule for every command: `srlab train`, `srlab eval` and `srlab upscale` with their default
``--device`` put their network on the same device (cuda, else mps, else cpu), with CUDA and MPS mocked.

No GPU is needed: the mocks make CUDA or MPS look available, and the first attempt to move a network onto a
non-CPU device is recorded and stops the command (this CPU build could not run it there anyway).
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from srlab import runtime
from srlab.cli import main
from srlab.models.registry import build_model
from srlab.weights.io import save_model

pytestmark = pytest.mark.usefixtures("one_thread")


class _Reached(BaseException):
    """Raised once a network is sent to a non-CPU device (BaseException: no command handler swallows it)."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(str(device))
        self.device = device


def _device_of(args, kwargs) -> torch.device | None:
    cand = kwargs.get("device", args[0] if args else None)
    if isinstance(cand, (str, torch.device)):
        try:
            return torch.device(cand)
        except (RuntimeError, TypeError):
            return None
    return None


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dev")
    rng = np.random.default_rng(0)
    imgs = root / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
    net, _ = build_model("srcnn", scale=2, n1=8, n2=4, f1=3, f2=1, f3=3)
    weights = save_model(root / "tiny.safetensors", net)
    cfg = {
        "name": "tiny",
        "scale": 2,
        "model": {"name": "srcnn", "hparams": {"scale": 2, "n1": 8, "n2": 4, "f1": 3, "f2": 1, "f3": 3}},
        "data": {"train": str(imgs), "mode": "random", "crop": 16},
        "val": {"set": None},
        "stages": {"train": {"iterations": 1, "batch_size": 2, "losses": {"pixel": "mse"}}},
        "checkpoint": {"every": 0},
        "log": {"every": 1, "progress": False, "tensorboard": False},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return root, Path(weights)


def _commands(root: Path, weights: Path, tag: str) -> dict[str, list[str]]:
    return {
        "train": ["train", str(root / "tiny.yaml"), "--out", str(root / f"run-{tag}")],
        "eval": [
            "eval",
            "--models",
            str(weights),
            "--set-path",
            f"tiny={root / 'imgs'}",
            "--datasets",
            "tiny",
            "--scale",
            "2",
            "--out",
            str(root / f"eval-{tag}"),
            "--no-progress",
        ],
        "upscale": [
            "upscale",
            str(root / "imgs" / "0.png"),
            "-o",
            str(root / f"up-{tag}"),
            "--model",
            str(weights),
        ],
    }


def _device_used(argv: list[str]) -> str:
    real_to = torch.nn.Module.to

    def recording_to(self, *args, **kwargs):
        dev = _device_of(args, kwargs)
        if dev is not None and dev.type != "cpu":
            raise _Reached(dev)
        return real_to(self, *args, **kwargs)

    with mock.patch.object(torch.nn.Module, "to", recording_to):
        try:
            rc = main(argv)
        except _Reached as reached:
            return reached.device.type
    assert rc == 0, f"srlab {' '.join(argv)} exited {rc}"
    return "cpu"


@pytest.mark.parametrize("available", ["cuda", "mps", "none"])
def test_train_eval_and_upscale_resolve_the_same_device(files, available, monkeypatch):
    root, weights = files
    monkeypatch.setattr(runtime, "cuda_available", lambda: available == "cuda")
    monkeypatch.setattr(runtime, "_mps_available", lambda: available == "mps")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    expected = {"cuda": "cuda", "mps": "mps", "none": "cpu"}[available]
    used = {name: _device_used(argv) for name, argv in _commands(root, weights, available).items()}
    assert used == {"train": expected, "eval": expected, "upscale": expected}


def test_an_explicit_device_that_is_missing_is_one_line_for_every_command(files, monkeypatch, capsys):
    root, weights = files
    monkeypatch.setattr(runtime, "cuda_available", lambda: False)
    for name, argv in _commands(root, weights, "missing").items():
        rc = main([*argv, "--device", "cuda"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc != 0, name
        assert any("no CUDA device is available" in line for line in err), (name, err)
