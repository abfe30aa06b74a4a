"""DDP on CPU: two gloo processes (torch.multiprocessing spawn) train a tiny model in step.

Checks: both ranks end with identical parameters (generator and discriminator), rank 0 alone writes the
checkpoints/exports/logs, and the two-process run equals a one-process run with the doubled batch (the
ranks' shards of each step are the halves of the single-process batch; SGD is linear in the averaged
gradient, so the results agree to float rounding).
"""

from __future__ import annotations

import os
import socket
import warnings

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

CFG = {
    "name": "ddp_tiny",
    "scale": 2,
    "model": {"name": "srcnn", "hparams": {"scale": 2, "n1": 8, "n2": 4, "f1": 5, "f2": 1, "f3": 3}},
    "data": {"train": "imgs", "mode": "center", "crop": 128, "degradation": "bicubic"},
    "val": {"set": None},
    "stages": {
        "psnr": {
            "iterations": 3,
            "batch_size": 2,
            "optim": {"type": "sgd", "lr": 0.05},
            "losses": {"pixel": "mse"},
        },
        "gan": {
            "kind": "gan",
            "iterations": 2,
            "batch_size": 2,
            "optim": {"type": "sgd", "lr": 0.01},
            "optim_d": {"type": "sgd", "lr": 0.01},
            "losses": {"pixel": "l1", "gan": "ragan", "gan_weight": 0.1},
            "discriminator": {"name": "vgg_discriminator", "hparams": {"input_size": 128, "num_feat": 4}},
        },
    },
    "checkpoint": {"every": 2},
    "log": {"every": 1, "progress": False, "tensorboard": False},
    "runtime": {"threads": 1},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from srlab.train.config import config_from_dict
    from srlab.train.trainer import Trainer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr = Trainer(config_from_dict(CFG), out_dir=out, data_root=root, echo=None)
        tr.run()
    stale = [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    with open(os.path.join(root, f"warnings_rank{rank}.txt"), "w") as fh:
        fh.write("\n".join(stale))
    torch.save(
        {"g": tr.g.state_dict(), "d": tr.runner.d.state_dict()}, os.path.join(root, f"params_rank{rank}.pt")
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("ddp")
    (r / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        small = rng.integers(0, 256, size=(16, 16, 3)).astype(np.uint8)
        Image.fromarray(small).resize((128, 128), Image.BICUBIC).save(r / "imgs" / f"{i}.png")
    return r


@pytest.mark.slow
def test_two_process_gloo_ddp_keeps_ranks_identical_and_matches_the_doubled_batch(root, tmp_path):
    out = tmp_path / "ddp"
    mp.start_processes(
        _worker, args=(2, _free_port(), str(root), str(out)), nprocs=2, join=True, start_method="spawn"
    )
    # no deprecation warning from srlab's use of DDP (each rank would print it)
    assert [(root / f"warnings_rank{r}.txt").read_text() for r in (0, 1)] == ["", ""]
    p0 = torch.load(root / "params_rank0.pt", weights_only=True)
    p1 = torch.load(root / "params_rank1.pt", weights_only=True)
    for part in ("g", "d"):
        for k in p0[part]:
            if p0[part][k].is_floating_point() and "running" not in k:  # BN running stats are per rank
                assert torch.equal(p0[part][k], p1[part][k]), (part, k)
    # rank 0 wrote the checkpoints, the exports and the logs, once
    cks = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert cks[-1] == "ckpt_s1_gan_00000002.pt" and (out / "model.safetensors").exists()
    from srlab.train.checkpoint import load_checkpoint

    ck = load_checkpoint(out / "checkpoints" / cks[-1])
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2
    lines = (out / "scalars.jsonl").read_text().splitlines()
    assert len(lines) == 5  # 3 + 2 iterations, one row each (rank 0 only)
    # one process with the doubled batch sees the same samples per step (compared after the psnr stage: in
    # the gan stage the discriminator's BatchNorm sees each rank's half batch)
    from srlab.train.config import apply_overrides, config_from_dict
    from srlab.train.trainer import Trainer

    single = Trainer(
        config_from_dict(apply_overrides(CFG, {"stages.*.batch_size": 4})),
        out_dir=tmp_path / "single",
        data_root=root,
        echo=None,
    )
    single.run()
    from safetensors.torch import load_file

    a, b = load_file(out / "psnr.safetensors"), load_file(tmp_path / "single" / "psnr.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(a[k], load_file(out / "model.safetensors")[k]) for k in a)
