"""Shared fixtures: the data root ($SRLAB_DATA_ROOT, or ../shared/data beside the repository, which this file
then exports as $SRLAB_DATA_ROOT for the commands the tests run: srlab itself never looks there), the vendored
golden images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if not os.environ.get("SRLAB_DATA_ROOT") and (REPO.parent / "shared" / "data" / "Set5").is_dir():
    os.environ["SRLAB_DATA_ROOT"] = str(REPO.parent / "shared" / "data")


def shared_data_root() -> Path | None:
    env = os.environ.get("SRLAB_DATA_ROOT")
    cand = Path(env) if env else REPO.parent / "shared" / "data"
    return cand if (cand / "Set5").is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("benchmark data not found: set SRLAB_DATA_ROOT to a folder with Set5/, Set14/, golden/")
    return root


@pytest.fixture(scope="session")
def golden_root() -> Path:
    """Vendored MATLAB reference images (tests/data/golden/README.md): always present, so the metric and
    resize exactness tests never skip."""
    return REPO / "tests" / "data" / "golden"


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: tiny networks run fastest so and are immune to a busy machine.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def denoise_pair(tmp_path, monkeypatch):
    """Two random SRVGG x4 files standing in for the realesr-general-x4v3 pair in the zoo cache."""
    import hashlib

    import torch

    import srlab
    from srlab.weights import zoo

    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    hp = dict(scale=4, num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, act_type="prelu")
    nets = {}
    for i, name in enumerate(("realesr-general-wdn-x4v3", "realesr-general-x4v3")):
        torch.manual_seed(10 + i)
        net, _ = srlab.build_model("srvgg", **hp)
        path = zoo.local_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"params": net.state_dict()}, path)
        entry = zoo.ZOO[name]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        monkeypatch.setitem(
            zoo.ZOO, name, zoo.ZooEntry(**{**entry.__dict__, "hparams": hp, "sha256": digest, "size": None})
        )
        nets[name] = net.eval()
    return nets
