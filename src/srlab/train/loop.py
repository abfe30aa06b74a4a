"""The training loop: stages, validation, checkpoints, resume, logging, mixed precision and DDP.

:class:`Trainer` runs the stages of a :class:`~srlab.train.config.TrainConfig` in order in one process (or one
process per device under ``torchrun``):

- **Data**: :class:`~srlab.data.datasets.SRTrainSet` in memory; step ``t`` of a stage takes the samples at
  stream positions ``offset + (t * world + rank) * batch ...`` (:class:`~srlab.data.datasets.SampleStream`:
  a per-epoch permutation from the seed, per-sample crops/flips seeded by the position). The data order is
  a function of the iteration alone, so resume and sharding need no sampler state.
- **Precision**: ``runtime.amp`` auto = bf16 autocast on CUDA when supported, else fp16 with a GradScaler;
  fp32 on CPU. channels_last and cudnn.benchmark on CUDA; fused Adam on CUDA; optional torch.compile.
- **Checkpoints** (``out/checkpoints/ckpt_s{stage}_{name}_{iter}.pt``, atomic, ``weights_only``-loadable):
  models (G, D, EMA), optimisers, scalers, RNG states of every rank, position and best metrics. Resuming
  from one continues bitwise-identically on CPU. ``resume='auto'`` picks the latest in ``out``.
- **Outputs**: ``out/{stage}.safetensors`` after each stage, ``out/best_{stage}.safetensors`` on each new
  best validation score and ``out/model.safetensors`` (the final stage's generator), written with
  :func:`srlab.weights.io.save_model` and metadata (arch, hparams, recipe, protocol, perceptual weights,
  iterations, best validation PSNR); ``scalars.csv``/``scalars.jsonl`` (+ TensorBoard), ``train.log``,
  ``samples/``, ``config.yaml`` (the resolved config).
- **DDP**: with ``WORLD_SIZE > 1`` in the environment (torchrun), one process per device (NCCL on CUDA, gloo
  on CPU); rank 0 logs, validates and writes files; seeds differ per rank.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from srlab.errors import ConfigError, SrlabError
from srlab.serialize import jsonable
from srlab.train.checkpoint import (
    FORMAT,
    VERSION,
    atomic_save,
    capture_rng,
    checkpoint_name,
    find_latest,
    list_checkpoints,
    load_checkpoint,
    restore_rng,
)
from srlab.train.config import TrainConfig, config_to_dict
from srlab.train.logs import RunLogger
from srlab.train.recipes import NonFiniteLossError, StageRunner

__all__ = ["TrainResult", "Trainer", "pick_amp", "pick_device", "train"]


@dataclass
class TrainResult:
    out_dir: Path
    model_path: Path | None = None
    completed: bool = False
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_checkpoint: Path | None = None


def pick_device(spec: str | None) -> torch.device:
    spec = (spec or "auto").lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} asked for but CUDA is not available; use --device cpu")
    return dev


def pick_amp(mode: str, device: torch.device, descriptor=None) -> torch.dtype | None:
    """Autocast dtype: auto = bf16 on CUDA when supported (else fp16), none on CPU."""
    if mode == "off":
        return None
    if mode == "auto":
        if device.type != "cuda":
            return None
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    if descriptor is not None:
        if dtype == torch.bfloat16 and not descriptor.supports_bf16:
            return None
        if dtype == torch.float16 and not descriptor.supports_fp16:
            return None
    return dtype


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return rank, world, local


class Trainer:
    """Runs a training config to completion (or to ``runtime.stop_after``); see the module docstring."""

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        out_dir: Path | str,
        data_root: Path | str | None = None,
        resume: str | Path | None = None,
        device: str | None = None,
        echo=print,
        config_path: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.data_root = data_root
        self.resume = resume
        self.device_spec = device or cfg.runtime.device
        self.echo = echo
        self.config_path = config_path
        self.rank, self.world, self.local_rank = _dist_env()
        self.is_main = self.rank == 0

    # --------------------------------------------------------------------------------------- helpers
    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log.message(text)

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def _setup_distributed(self) -> None:
        if self.world <= 1:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world)
        self._own_pg = True

    def _gather_rng(self) -> list[dict]:
        state = capture_rng()
        if self.world <= 1:
            return [state]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, state)
        return out

    # ------------------------------------------------------------------------------------------- run
    def run(self) -> TrainResult:
        self.log: RunLogger | None = None
        self._own_pg = False
        self.device = pick_device(self.device_spec)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        self._setup_distributed()
        threads = torch.get_num_threads()
        try:
            return self._run()
        finally:
            torch.set_num_threads(threads)
            if self.log is not None:
                self.log.close()
            if self._own_pg:
                import torch.distributed as dist

                if dist.is_initialized():
                    dist.destroy_process_group()

    def _run(self) -> TrainResult:
        import random

        import numpy as np

        from srlab.data.datasets import SampleStream, SRTrainSet
        from srlab.models.registry import build_model
        from srlab.train.validate import ValSet, resolve_data_path

        cfg, dev = self.cfg, self.device
        if cfg.runtime.threads > 0:
            torch.set_num_threads(cfg.runtime.threads)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = bool(cfg.runtime.cudnn_benchmark)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.log = RunLogger(
            self.out_dir, enabled=self.is_main, tensorboard=cfg.log.tensorboard, echo=self.echo
        )
        result = TrainResult(self.out_dir)

        # --- resume point
        ckpt = None
        if self.resume:
            path = find_latest(self.ckpt_dir) if str(self.resume) == "auto" else Path(self.resume)
            if path is None:
                self._say(f"resume auto: no checkpoint in {self.ckpt_dir}, starting from scratch")
            else:
                ckpt = load_checkpoint(path)
                self._check_resume(ckpt, path)
        elif list_checkpoints(self.ckpt_dir):
            raise SrlabError(
                f"{self.ckpt_dir} already holds checkpoints of an earlier run; use --resume auto to continue it "
                "or --out DIR for a new run"
            )

        if self.is_main:
            import yaml

            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(
                yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8"
            )

        # --- seeds (per rank), model
        seed = cfg.seed
        random.seed(seed + self.rank)
        np.random.seed((seed + self.rank) % 2**32)
        torch.manual_seed(seed + self.rank)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            g, desc = build_model(cfg.model.name, **cfg.model.hparams)
        if desc.scale != cfg.scale:
            raise ConfigError(
                f"model {cfg.model.name!r} is x{desc.scale} but the config's scale is {cfg.scale}"
            )
        want_c = 1 if cfg.data.color == "y" else 3
        if desc.in_channels != want_c:
            raise ConfigError(
                f"model {cfg.model.name!r} takes {desc.in_channels} channels but data.color is "
                f"{cfg.data.color!r}; set model.hparams (num_channels / num_in_ch) or data.color"
            )
        g = g.to(dev)
        self.g, self.desc = g, desc
        amp = pick_amp(cfg.runtime.amp, dev, desc)
        self.amp = amp
        self._say(
            f"train {cfg.name}: {desc.arch} x{desc.scale} ({desc.params:,} params) on {dev}"
            + (f" x{self.world} processes" if self.world > 1 else "")
            + f", precision {str(amp).replace('torch.', '') if amp else 'fp32'}, out {self.out_dir}"
        )
        if self.log is not None and self.log.enabled:
            self._say(f"tensorboard: {self.log.tb_status}")

        # --- everything a later stage needs must be there before the first one starts
        from srlab.train.losses import check_perceptual_weights

        for st in cfg.stages.values():
            if st.losses.perceptual != "none":
                check_perceptual_weights(st.losses.perceptual_weights)

        # --- data
        d = cfg.data
        train_dir = resolve_data_path(d.train, self.data_root)
        lr_dir = resolve_data_path(d.train_lr, self.data_root, hr=False) if d.train_lr else None
        self.data = SRTrainSet(
            train_dir,
            scale=cfg.scale,
            lr_dir=lr_dir,
            degradation=d.degradation,
            quantize_lr=d.quantize_lr,
            mode=d.mode,
            crop=d.crop,
            stride=d.stride,
            color=d.color,
            flip=d.flip,
            rot90=d.rot90,
            small=d.small,
            pre_upsample=d.pre_upsample,
            lr_on_device=d.lr_on_device,
            max_images=d.max_images,
            log=self._say,
        )
        self.stream = SampleStream(len(self.data), seed, shuffle=d.shuffle)
        self.val = None
        if cfg.val.set and self.is_main:
            self.val = ValSet(
                resolve_data_path(cfg.val.set, self.data_root),
                scale=cfg.scale,
                protocol=cfg.val.protocol,
                color=d.color,
                max_images=cfg.val.max_images,
                log=self._say,
            )
            self._say(f"val: {len(self.val)} images from {self.val.folder} ({cfg.val.protocol} protocol)")

        # --- stages
        names = cfg.stage_names()
        start_si, start_it, done = 0, 0, False
        if ckpt is not None:
            start_si, start_it, done = (
                int(ckpt["stage_index"]),
                int(ckpt["iteration"]),
                bool(ckpt["stage_done"]),
            )
            g.load_state_dict(ckpt["models"]["g"])
            result.stages = {k: dict(v) for k, v in ckpt.get("summary", {}).items()}
            if self.log is not None:
                self.log.truncate_after(start_si, names, start_it)
            self._say(f"resumed from {self._resume_path} (stage {names[start_si]}, iteration {start_it})")
            if done:
                start_si, start_it = start_si + 1, 0
        self.stop_budget = cfg.runtime.stop_after
        self.done_this_run = 0
        self.result = result
        for si, name in enumerate(names):
            if si < start_si:
                continue
            if self.stop_budget and self.done_this_run >= self.stop_budget:
                self._say(f"stopping after {self.done_this_run} iterations (runtime.stop_after)")
                return result
            resume_here = ckpt is not None and si == int(ckpt["stage_index"]) and not bool(ckpt["stage_done"])
            stopped = self._run_stage(
                si, name, result, ckpt if resume_here else None, start_it if si == start_si else 0
            )
            if stopped:
                return result
        # final model
        if self.is_main and names:
            last = self.out_dir / f"{names[-1]}.safetensors"
            final = self.out_dir / "model.safetensors"
            shutil.copyfile(last, final)
            result.model_path = final
            self._say(f"done: {final}")
        else:
            result.model_path = self.out_dir / "model.safetensors"
        result.completed = True
        self._barrier()
        return result

    def _check_resume(self, ckpt: dict, path: Path) -> None:
        self._resume_path = path
        names = self.cfg.stage_names()
        si, stage = int(ckpt["stage_index"]), ckpt["stage"]
        if si >= len(names) or names[si] != stage:
            raise SrlabError(
                f"{path}: checkpoint of stage {stage!r} (#{si}) but the config's stages are {names}; "
                "resume with the config that made it"
            )
        old = ckpt.get("config", {})
        if old.get("model") != config_to_dict(self.cfg)["model"]:
            raise SrlabError(f"{path}: checkpoint of a different model ({old.get('model')}); use its config")
        ws = int(ckpt.get("world_size", 1))
        if ws != self.world:
            self._say(
                f"note: checkpoint made with {ws} processes, resuming with {self.world} (data order differs)"
            )

    # ------------------------------------------------------------------------------------------ stage
    def _init_generator(self, name: str, init: str | None) -> None:
        if not init:
            return
        if init in self.cfg.stages:
            path = self.out_dir / f"{init}.safetensors"
            if not path.exists():
                raise SrlabError(f"stage {name}: init {init!r} needs {path}, which the earlier stage writes")
        else:
            path = Path(init).expanduser()
        from srlab.weights.io import read_state_dict

        sd = read_state_dict(path)
        try:
            self.g.load_state_dict(sd)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise SrlabError(f"stage {name}: {path} does not fit the model ({first})") from None
        self._say(f"stage {name}: generator initialised from {path}")

    def _run_stage(self, si: int, name: str, result: TrainResult, ckpt: dict | None, start_it: int) -> bool:
        """Run one stage; True when stopped early (runtime.stop_after)."""
        from tqdm import tqdm

        from srlab.data.datasets import synthesize_lr

        cfg, st, dev = self.cfg, self.cfg.stages[name], self.device
        if ckpt is None:
            self._init_generator(name, st.init)
        runner = StageRunner(
            name,
            st,
            self.g,
            device=dev,
            amp_dtype=self.amp,
            seed=cfg.seed + 1000 * (si + 1),
            pre_upsampled=bool(cfg.data.pre_upsample),
            channels_last=cfg.runtime.channels_last,
            compile=cfg.runtime.compile,
            compile_mode=cfg.runtime.compile_mode,
            fused_blocks=cfg.runtime.fused_blocks,
            ddp=self.world > 1,
            local_rank=self.local_rank,
            log=self._say,
        )
        self.runner = runner
        summary = result.stages.setdefault(name, {})
        best = dict(summary.get("best") or {})
        it = 0
        if ckpt is not None:
            runner.load_state_dict(ckpt["stage_state"], ckpt["models"])
            rngs = ckpt.get("rng") or []
            if len(rngs) == self.world:
                restore_rng(rngs[self.rank])
            it = start_it
        total = st.iterations
        if it >= total:
            self._say(f"stage {name}: already at iteration {it} of {total}")
        else:
            self._say(
                f"stage {name} ({st.kind}): iterations {it}..{total}, batch {st.batch_size}"
                + (f" x{self.world}" if self.world > 1 else "")
                + f", {st.optim.type} lr {st.optim.lr:g}, losses "
                + ", ".join(self._loss_names(st))
                + (f", perceptual weights: {runner.perceptual_source}" if runner.perceptual else "")
            )
        offset = sum(
            s.iterations * s.batch_size * self.world for s in list(cfg.stages.values())[:si]
        )  # stream positions consumed by earlier stages
        bar = tqdm(
            total=total,
            initial=it,
            desc=name,
            unit="it",
            dynamic_ncols=True,
            disable=(None if (self.is_main and cfg.log.progress) else True),
        )
        acc: dict[str, torch.Tensor] = {}  # loss sums on the device (no per-step host sync)
        acc_n = 0
        t_log = time.time()
        it_log = it
        last_ckpt_it = it if ckpt is not None else -1
        try:
            while it < total:
                if self.stop_budget and self.done_this_run >= self.stop_budget:
                    runner.check_finite()
                    if last_ckpt_it != it:
                        result.last_checkpoint = self._save(si, name, it, runner, best, result, done=False)
                    self._say(f"stopping after {self.done_this_run} iterations (runtime.stop_after)")
                    summary["iterations"] = it
                    return True
                runner.set_lr(it)
                start = offset + (it * self.world + self.rank) * st.batch_size
                lr_b, hr_b = self.data.batch(self.stream, range(start, start + st.batch_size), seed=cfg.seed)
                hr_b = hr_b.to(dev, non_blocking=True)
                if lr_b is None:
                    lr_b, hr_b = synthesize_lr(
                        hr_b,
                        cfg.scale,
                        cfg.data.degradation,
                        quantize_lr=cfg.data.quantize_lr,
                        color=cfg.data.color,
                    )
                else:
                    lr_b = lr_b.to(dev, non_blocking=True)
                losses = runner.step(lr_b, hr_b, it)
                it += 1
                self.done_this_run += 1
                bar.update(1)
                if losses is not None:
                    for k, v in losses.items():
                        acc[k] = acc[k] + v.float() if k in acc else v.float()
                    acc_n += 1
                log_now = it % max(1, cfg.log.every) == 0 or it == total
                if log_now and self.is_main:
                    dt = time.time() - t_log
                    runner.check_finite()
                    keys = list(acc)
                    vals = torch.stack([acc[k] for k in keys]).cpu().tolist() if keys else []
                    rows = {k: v / max(acc_n, 1) for k, v in zip(keys, vals)}
                    rows["lr"] = float(runner.opt_g.param_groups[0]["lr"])
                    rows["it_per_s"] = (it - it_log) / dt if dt > 0 else 0.0
                    rows["mpx_per_s"] = (
                        rows["it_per_s"] * st.batch_size * self.world * hr_b[0, 0].numel() / 1e6
                    )
                    if runner.skipped:
                        rows["skipped_steps"] = runner.skipped
                    self.log.scalars(name, it, rows)
                    bar.set_postfix(
                        {k: f"{v:.4g}" for k, v in rows.items() if k.startswith("l_")}, refresh=False
                    )
                    acc, acc_n, t_log, it_log = {}, 0, time.time(), it
                elif log_now:
                    runner.check_finite()
                    acc, acc_n = {}, 0
                val_now = cfg.val.set and cfg.val.every > 0 and it % cfg.val.every == 0 and it < total
                if val_now:
                    runner.check_finite()
                    self._validate(si, name, it, runner, best)
                ck_now = cfg.checkpoint.every > 0 and it % cfg.checkpoint.every == 0 and it < total
                if ck_now:
                    runner.check_finite()
                    result.last_checkpoint = self._save(si, name, it, runner, best, result, done=False)
                    last_ckpt_it = it
            runner.check_finite()
        except NonFiniteLossError as exc:
            last = find_latest(self.ckpt_dir)
            where = f"; the last good checkpoint is {last}" if last else "; no checkpoint was written"
            raise NonFiniteLossError(f"{exc}{where}") from None
        finally:
            bar.close()
        # --- end of stage
        if cfg.val.set:
            self._validate(si, name, it, runner, best)
        summary.update(
            {
                "iterations": it,
                "best": best or None,
                "perceptual_weights": runner.perceptual_source,
                "skipped_steps": runner.skipped,
            }
        )
        out = self.out_dir / f"{name}.safetensors"
        if self.is_main:
            self._export(out, runner.eval_model(), si, name, it, runner, best, result)
            summary["model"] = str(out)
        result.last_checkpoint = self._save(si, name, it, runner, best, result, done=True)
        self._say(
            f"stage {name} done: {it} iterations"
            + (
                f", best val {cfg.val.metric} {best.get('value'):.4f} at {best.get('iteration')}"
                if best
                else ""
            )
            + f" -> {out}"
        )
        self._barrier()
        return False

    @staticmethod
    def _loss_names(st) -> list[str]:
        L = st.losses
        out = []
        if L.pixel != "none":
            out.append(f"{L.pixel_weight:g}*{L.pixel}")
        if L.perceptual != "none":
            out.append(
                f"{L.perceptual_weight:g}*vgg19[{','.join(L.perceptual_layers)}]"
                f"({L.perceptual_criterion}, {'imagenet-norm' if L.perceptual_normalize else 'no norm'})"
            )
        if L.gan != "none":
            out.append(f"{L.gan_weight:g}*{L.gan}")
        return out

    # ------------------------------------------------------------------------------ validate/save
    def _validate(self, si: int, name: str, it: int, runner: StageRunner, best: dict) -> None:
        if self.is_main and self.val is not None:
            from srlab.train.validate import run_validation

            model = runner.eval_model()
            mean, _rows = run_validation(
                model,
                self.val,
                self.device,
                samples=self.cfg.val.samples,
                sample_dir=self.out_dir / "samples",
                tag=f"{name}_{it:08d}",
                ssim=self.cfg.val.ssim or self.cfg.val.metric == "ssim",
            )
            vals = {"val_psnr": mean["psnr"]}
            if math.isfinite(mean["ssim"]):
                vals["val_ssim"] = mean["ssim"]
            self.log.scalars(name, it, vals)
            value = mean[self.cfg.val.metric]
            improved = not best or value > best["value"]
            self._say(
                f"val {name} @{it}: PSNR {mean['psnr']:.4f} dB"
                + (f", SSIM {mean['ssim']:.4f} " if math.isfinite(mean["ssim"]) else " ")
                + f"({self.cfg.val.protocol}, {len(self.val)} images){' *best*' if improved else ''}"
            )
            if improved:
                best.clear()
                best.update(
                    {
                        "metric": self.cfg.val.metric,
                        "value": value,
                        "psnr": mean["psnr"],
                        "ssim": mean["ssim"],
                        "iteration": it,
                        "set": str(self.cfg.val.set),
                        "protocol": self.cfg.val.protocol,
                    }
                )
                self._export(
                    self.out_dir / f"best_{name}.safetensors", model, si, name, it, runner, best, None
                )
        if self.world > 1:
            import torch.distributed as dist

            obj = [dict(best)]
            dist.broadcast_object_list(obj, src=0)
            best.clear()
            best.update(obj[0])

    def _metadata(self, si: int, name: str, it: int, runner: StageRunner, best: dict) -> dict:
        cfg = self.cfg
        iters = {n: cfg.stages[n].iterations for n in cfg.stage_names()[:si]}
        iters[name] = it
        percep = {n: self.result.stages.get(n, {}).get("perceptual_weights") for n in cfg.stage_names()[:si]}
        percep[name] = runner.perceptual_source
        return {
            "recipe": cfg.name,
            "config": config_to_dict(cfg),
            "protocol": cfg.protocol,
            "degradation": "paired LR folder" if cfg.data.train_lr else cfg.data.degradation,
            "training_data": cfg.data.train,
            "stage": name,
            "iterations": iters,
            "perceptual_weights": percep,
            "ema": bool(runner.ema is not None),
            "best_val": dict(best) if best else None,
            "best_val_psnr": best.get("psnr") if best else None,
            "trained_with": "srlab train",
        }

    def _export(self, path: Path, model, si, name, it, runner, best, result) -> None:
        from srlab.weights.io import save_model

        for k, v in model.state_dict().items():
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                raise SrlabError(f"refusing to export {path.name}: weight {k} is not finite")
        save_model(path, model, metadata=self._metadata(si, name, it, runner, best))

    def _save(self, si, name, it, runner: StageRunner, best, result: TrainResult, *, done: bool) -> Path:
        rngs = self._gather_rng()
        path = self.ckpt_dir / checkpoint_name(si, name, it)
        if self.is_main:
            models = {"g": self.g.state_dict(), **runner.model_states()}
            summary = {k: dict(v) for k, v in result.stages.items()}
            summary.setdefault(name, {})["best"] = dict(best) or None
            obj = {
                "format": FORMAT,
                "version": VERSION,
                "config": config_to_dict(self.cfg),
                "stage_index": si,
                "stage": name,
                "iteration": it,
                "stage_done": done,
                "world_size": self.world,
                # where the data stream stands (a function of the iteration; recorded for the reader)
                "data": self._data_position(si, it),
                "models": models,
                "stage_state": runner.state_dict(),
                "rng": rngs,
                "summary": jsonable(summary),
                "perceptual_weights": runner.perceptual_source,
                "time": time.time(),
            }
            atomic_save(obj, path)
            self._prune()
        self._barrier()
        return path

    def _data_position(self, si: int, it: int) -> dict:
        stages = list(self.cfg.stages.values())
        offset = sum(s.iterations * s.batch_size * self.world for s in stages[:si])
        pos = offset + it * stages[si].batch_size * self.world
        n = self.stream.n
        return {
            "seed": self.cfg.seed,
            "samples_seen": pos,
            "epoch": pos // n,
            "position_in_epoch": pos % n,
            "items": n,
        }

    def _prune(self) -> None:
        keep = self.cfg.checkpoint.keep
        if keep <= 0:
            return
        cks = list_checkpoints(self.ckpt_dir)
        for _si, _it, p in cks[:-keep]:
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def train(
    cfg: TrainConfig,
    out_dir: Path | str,
    *,
    data_root: Path | str | None = None,
    resume: str | Path | None = None,
    device: str | None = None,
    echo=print,
) -> TrainResult:
    """Train ``cfg`` into ``out_dir`` (see :class:`Trainer`)."""
    return Trainer(cfg, out_dir=out_dir, data_root=data_root, resume=resume, device=device, echo=echo).run()
