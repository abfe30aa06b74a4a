"""The training loop: stages, validation, checkpoints, resume, logging, mixed precision and DDP.

:class:`Trainer` runs the stages of a :class:`~srlab.train.config.TrainConfig` in order in one process (or one
process per device under ``torchrun``):

- **Data**: :class:`~srlab.train.batches.TrainBatches` in memory; the samples of a step are a function of the
  iteration alone, so resume and sharding need no sampler state.
- **Device, precision, threads**: :mod:`srlab.runtime` (``runtime.amp`` through ``resolve_precision(...,
  training=True)``: auto = bf16 autocast on CUDA when supported, else fp16 with a GradScaler; fp32 on the
  CPU). channels_last and cudnn.benchmark on CUDA; fused Adam on CUDA; optional torch.compile.
- **Checkpoints and outputs**: :class:`~srlab.train.outputs.RunOutputs`, one run per folder (a lock, stale
  files, resume checks: :mod:`~srlab.train.rundir`). Resuming continues bitwise-identically on CPU;
  ``resume='auto'`` picks the latest readable checkpoint. Logs: :class:`~srlab.train.logs.RunLogger`.
- **DDP**: with ``WORLD_SIZE > 1`` in the environment (torchrun), one process per device (NCCL on CUDA, gloo
  on CPU); rank 0 logs, validates and writes files; seeds differ per rank.

The stage in progress is one :class:`~srlab.train.state.StageState` (index, name, iteration, runner, best
validation, the run's result). A stage exports the generator weights its ``keep`` names
(:mod:`srlab.train.keep`); the next stage continues from those.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from srlab.errors import ConfigError, SrlabError
from srlab.models.registry import build_model
from srlab.runtime import amp_dtype, resolve_device, resolve_precision, threads
from srlab.train.batches import TrainBatches, load_val_set
from srlab.train.checkpoint import capture_rng, check_resume, find_latest, load_resume, restore_rng
from srlab.train.config import TrainConfig, config_to_dict
from srlab.train.distributed import (
    barrier,
    broadcast_object,
    dist_env,
    gather_objects,
    init_process_group,
    shutdown,
)
from srlab.train.logs import RunLogger
from srlab.train.losses import check_perceptual_weights, describe_losses
from srlab.train.outputs import RunOutputs
from srlab.train.recipes import NonFiniteLossError, RunnerOptions, StageRunner
from srlab.train.rundir import clean_stale_temps, hold_run_folder, review_resume, write_error
from srlab.train.state import StageState, TrainResult
from srlab.train.validate import run_validation
from srlab.weights.io import read_state_dict

__all__ = ["TrainResult", "Trainer", "train"]


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
        force_resume: bool = False,
    ) -> None:
        self.cfg = cfg
        self.force_resume = force_resume
        self.out_dir = Path(out_dir)
        self.data_root = data_root
        self.resume = resume
        self.device_spec = device or cfg.runtime.device
        self.echo = echo
        self.config_path = config_path
        self.rank, self.world, self.local_rank = dist_env()
        self.is_main = self.rank == 0
        self.outputs = RunOutputs(cfg, self.out_dir, world=self.world)
        self.ckpt_dir = self.outputs.ckpt_dir
        self.log: RunLogger | None = None

    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log.message(text)

    # ------------------------------------------------------------------------------------------- run
    def run(self) -> TrainResult:
        self.log = None
        self.device = resolve_device(self.device_spec)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        self._own_pg = init_process_group(self.device, self.rank, self.world)
        lock = None
        try:
            lock = hold_run_folder(self.out_dir, rank=self.rank, world=self.world)
            with threads(self.cfg.runtime.threads):
                return self._run()
        except OSError as exc:  # a full disk, a read-only folder: one line, the last good checkpoint kept
            raise SrlabError(write_error(exc, self.out_dir, self.ckpt_dir)) from None
        finally:
            if self.log is not None:
                self.log.close()
            if lock is not None:
                lock.release()
            if self._own_pg:
                shutdown()

    def _run(self) -> TrainResult:
        cfg, dev = self.cfg, self.device
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = bool(cfg.runtime.cudnn_benchmark)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.log = RunLogger(
            self.out_dir, enabled=self.is_main, tensorboard=cfg.log.tensorboard, echo=self.echo
        )
        if self.is_main:
            stale = clean_stale_temps(self.out_dir)
            if stale:
                self._say(
                    f"removed {len(stale)} stale temporary files of an interrupted run ({stale[0].name}, ...)"
                )
        self.result = result = TrainResult(self.out_dir)
        ckpt = self._resume_checkpoint()
        self._build_generator()
        # everything a later stage needs must be there before the first one starts
        for st in cfg.stages.values():
            if st.losses.perceptual != "none":
                check_perceptual_weights(st.losses.perceptual_weights)
        self._load_data()
        if ckpt is not None:
            self._check_changes(ckpt)
        if self.is_main:
            self.outputs.write_config()

        names = cfg.stage_names()
        start_si, start_it = 0, 0
        if ckpt is not None:
            start_si, start_it = int(ckpt["stage_index"]), int(ckpt["iteration"])
            self.g.load_state_dict(ckpt["models"]["g"])
            result.stages = {k: dict(v) for k, v in ckpt.get("summary", {}).items()}
            if self.log is not None:
                self.log.truncate_after(start_si, names, start_it)
            self._say(f"resumed from {self._resume_path} (stage {names[start_si]}, iteration {start_it})")
            if bool(ckpt["stage_done"]):
                more = cfg.stages[names[start_si]].iterations - start_it
                if more > 0:  # the config asks for more than the finished stage ran: continue it
                    done = names[start_si]
                    self._say(f"stage {done} finished at {start_it}; training {more} more iterations")
                    ckpt["stage_done"] = False
                else:
                    start_si, start_it = start_si + 1, 0
        elif self.log is not None:
            self.log.reset()  # rows of a run killed before its first checkpoint are not this run's history
        self.stop_budget = cfg.runtime.stop_after
        self.done_this_run = 0
        for si, name in enumerate(names):
            if si < start_si:
                continue
            if self.stop_budget and self.done_this_run >= self.stop_budget:
                self._say(f"stopping after {self.done_this_run} iterations (runtime.stop_after)")
                return result
            resume_here = ckpt is not None and si == int(ckpt["stage_index"]) and not bool(ckpt["stage_done"])
            stopped = self._run_stage(
                si, name, ckpt if resume_here else None, start_it if si == start_si else 0
            )
            if stopped:
                return result
        if self.is_main and names:
            result.model_path = self.outputs.finish(names[-1])
            self._say(f"done: {result.model_path}")
        else:
            result.model_path = self.outputs.final_path
        result.completed = True
        barrier(self.world)
        return result

    def _resume_checkpoint(self) -> dict | None:
        """The checkpoint to resume from (checked against the config), or None for a fresh start."""
        found = load_resume(self.resume, self.ckpt_dir, self._say)
        if found is None:
            if self.resume:
                self._say(f"resume auto: no checkpoint in {self.ckpt_dir}, starting from scratch")
            return None
        path, ckpt = found
        self._resume_path = path
        note = check_resume(ckpt, path, self.cfg, self.world)
        if note:
            self._say(note)
        return ckpt

    def _check_changes(self, ckpt: dict) -> None:
        """Refuse a resume whose seed, data or recipe changed (``force_resume``: go on, say so, record it)."""
        self.outputs.forced_resumes, note = review_resume(
            ckpt,
            self._resume_path,
            config_to_dict(self.cfg),
            self.outputs.data_digest,
            force=self.force_resume,
        )
        if note:
            self._say(note)

    def _build_generator(self) -> None:
        """Seed every RNG (per rank), build the generator (from the seed alone) and pick the precision."""

        cfg, dev = self.cfg, self.device
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
        self.g, self.desc = g.to(dev), desc
        self.precision = resolve_precision(cfg.runtime.amp, dev, desc, training=True)
        if self.precision == "fp16" and dev.type != "cuda":
            # fp16 training needs its gradient scaler, which runs on CUDA only
            self._say(f"runtime.amp fp16 trains on CUDA only; fp32 on {dev.type}")
            self.precision = "fp32"
        self.amp = amp_dtype(self.precision)
        self._say(
            f"train {cfg.name}: {desc.arch} x{desc.scale} ({desc.params:,} params) on {dev}"
            + (f" x{self.world} processes" if self.world > 1 else "")
            + f", precision {self.precision}, out {self.out_dir}"
        )
        if self.log is not None and self.log.enabled:
            self._say(f"tensorboard: {self.log.tb_status}")

    def _load_data(self) -> None:
        self.data = TrainBatches(
            self.cfg, self.data_root, log=self._say, preview=self.is_main and self.out_dir
        )
        self.outputs.data_digest = self.data.data.fingerprint()
        self.val = load_val_set(self.cfg, self.data_root, log=self._say) if self.is_main else None
        if self.val is not None:
            self._say(
                f"val: {len(self.val)} images from {self.val.folder} ({self.cfg.val.protocol} protocol)"
            )

    # ------------------------------------------------------------------------------------------ stage
    def _init_generator(self, name: str, init: str | None) -> None:
        if not init:
            return
        path = self.outputs.init_path(name, init)

        sd = read_state_dict(path)
        try:
            self.g.load_state_dict(sd)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise SrlabError(f"stage {name}: {path} does not fit the model ({first})") from None
        self._say(f"stage {name}: generator initialised from {path}")

    def _start_stage(self, si: int, name: str, ckpt: dict | None, start_it: int) -> StageState:
        """The stage's runner (restored from ``ckpt`` when resuming inside it) and its state."""
        cfg, st = self.cfg, self.cfg.stages[name]
        if ckpt is None:
            self._init_generator(name, st.init)
        runner = StageRunner(
            name,
            st,
            self.g,
            device=self.device,
            amp_dtype=self.amp,
            seed=cfg.seed + 1000 * (si + 1),
            options=RunnerOptions.from_config(cfg, world=self.world, local_rank=self.local_rank),
            log=self._say,
        )
        self.runner = runner
        stage = StageState(si, name, st, runner, self.result)
        stage.best = dict(stage.summary.get("best") or {})
        if ckpt is not None:
            runner.load_state_dict(ckpt["stage_state"], ckpt["models"])
            rngs = ckpt.get("rng") or []
            if len(rngs) == self.world:
                restore_rng(rngs[self.rank])
            stage.iteration = start_it
        if stage.iteration >= st.iterations:
            self._say(f"stage {name}: already at iteration {stage.iteration} of {st.iterations}")
        else:
            self._say(
                f"stage {name} ({st.kind}): iterations {stage.iteration}..{st.iterations}, batch {st.batch_size}"
                + (f" x{self.world}" if self.world > 1 else "")
                + f", {st.optim.type} lr {st.optim.lr:g}, losses "
                + ", ".join(describe_losses(st.losses))
                + (f", perceptual weights: {runner.perceptual_source}" if runner.perceptual else "")
                + (", D updated before G" if st.d_first else "")
                + (f", keeps {st.keep}" if st.keep != "last" else "")
            )
        return stage

    def _run_stage(self, si: int, name: str, ckpt: dict | None, start_it: int) -> bool:
        """Run one stage; True when stopped early (runtime.stop_after)."""

        cfg = self.cfg
        stage = self._start_stage(si, name, ckpt, start_it)
        runner, st, result = stage.runner, stage.cfg, self.result
        total = st.iterations
        offset = self.outputs.stream_offset(si)
        bar = tqdm(
            total=total,
            initial=stage.iteration,
            desc=name,
            unit="it",
            dynamic_ncols=True,
            disable=(None if (self.is_main and cfg.log.progress) else True),
        )
        acc: dict[str, torch.Tensor] = {}  # loss sums on the device (no per-step host sync)
        acc_n = 0
        t_log, it_log = time.time(), stage.iteration
        last_ckpt_it = stage.iteration if ckpt is not None else -1
        try:
            while stage.iteration < total:
                if self.stop_budget and self.done_this_run >= self.stop_budget:
                    runner.check_finite()
                    if last_ckpt_it != stage.iteration:
                        result.last_checkpoint = self._save(stage, done=False)
                    self._say(f"stopping after {self.done_this_run} iterations (runtime.stop_after)")
                    stage.summary["iterations"] = stage.iteration
                    return True
                runner.set_lr(stage.iteration)
                lr_b, hr_b = self.data.batch(
                    st.batch_size,
                    stage.iteration,
                    offset,
                    rank=self.rank,
                    world=self.world,
                    device=self.device,
                )
                losses = runner.step(lr_b, hr_b, stage.iteration)
                stage.iteration += 1
                it = stage.iteration
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
                    rows = self._log_row(stage, acc, acc_n, it - it_log, dt, hr_b)
                    bar.set_postfix(
                        {k: f"{v:.4g}" for k, v in rows.items() if k.startswith("l_")}, refresh=False
                    )
                    acc, acc_n, t_log, it_log = {}, 0, time.time(), it
                elif log_now:
                    runner.check_finite()
                    acc, acc_n = {}, 0
                if cfg.val.set and cfg.val.every > 0 and it % cfg.val.every == 0 and it < total:
                    runner.check_finite()
                    self._validate(stage)
                if cfg.checkpoint.every > 0 and it % cfg.checkpoint.every == 0 and it < total:
                    runner.check_finite()
                    result.last_checkpoint = self._save(stage, done=False)
                    last_ckpt_it = it
            runner.check_finite()
        except NonFiniteLossError as exc:
            last = find_latest(self.ckpt_dir)
            where = f"; the last good checkpoint is {last}" if last else "; no checkpoint was written"
            raise NonFiniteLossError(f"{exc}{where}") from None
        finally:
            bar.close()
        self._end_stage(stage)
        return False

    def _log_row(
        self, stage: StageState, acc: dict, acc_n: int, iters: int, dt: float, hr_b: torch.Tensor
    ) -> dict[str, float]:
        """Write one scalar row: the mean losses since the last row, learning rate and throughput."""
        runner = stage.runner
        keys = list(acc)
        vals = torch.stack([acc[k] for k in keys]).cpu().tolist() if keys else []
        rows = {k: v / max(acc_n, 1) for k, v in zip(keys, vals)}
        rows["lr"] = float(runner.opt_g.param_groups[0]["lr"])
        rows["it_per_s"] = iters / dt if dt > 0 else 0.0
        rows["mpx_per_s"] = rows["it_per_s"] * stage.cfg.batch_size * self.world * hr_b[0, 0].numel() / 1e6
        if runner.skipped:
            rows["skipped_steps"] = runner.skipped
        self.log.scalars(stage.name, stage.iteration, rows)
        return rows

    def _end_stage(self, stage: StageState) -> None:
        """Validate, export ``{stage}.safetensors`` and write the stage's final checkpoint."""
        cfg, runner, name = self.cfg, stage.runner, stage.name
        kept = runner.keep_result()  # before validating: the final validation scores what is exported
        if kept is not None:
            stage.summary["kept"] = kept
            it = kept["iteration"]
            self._say(
                f"stage {name}: keeping the weights after {it} iterations (best_train_loss)"
                if it is not None
                else f"stage {name}: no finite training loss seen; keeping the last weights"
            )
        if cfg.val.set:
            self._validate(stage)
        best = stage.best
        stage.summary.update(
            {
                "iterations": stage.iteration,
                "best": best or None,
                "perceptual_weights": runner.perceptual_source,
                "skipped_steps": runner.skipped,
            }
        )
        out = self.outputs.stage_path(name)
        if self.is_main:
            self.outputs.export(out, runner.eval_model(), stage)
            stage.summary["model"] = str(out)
        self.result.last_checkpoint = self._save(stage, done=True)
        self._say(
            f"stage {name} done: {stage.iteration} iterations"
            + (
                f", best val {cfg.val.metric} {best.get('value'):.4f} at {best.get('iteration')}"
                if best
                else ""
            )
            + f" -> {out}"
        )
        barrier(self.world)

    # ------------------------------------------------------------------------------ validate/save
    def _validate(self, stage: StageState) -> None:
        """Validate (rank 0), track the best score (exporting ``best_{stage}``) and share it with every rank."""
        best, name, it, vcfg = stage.best, stage.name, stage.iteration, self.cfg.val
        if self.is_main and self.val is not None:
            model = stage.runner.eval_model()
            mean, _rows = run_validation(
                model,
                self.val,
                self.device,
                samples=vcfg.samples,
                sample_dir=self.out_dir / "samples",
                tag=f"{name}_{it:08d}",
                ssim=vcfg.ssim or vcfg.metric == "ssim",
            )
            vals = {"val_psnr": mean["psnr"]}
            if math.isfinite(mean["ssim"]):
                vals["val_ssim"] = mean["ssim"]
            self.log.scalars(name, it, vals)
            value = mean[vcfg.metric]
            improved = not best or value > best["value"]
            self._say(
                f"val {name} @{it}: PSNR {mean['psnr']:.4f} dB"
                + (f", SSIM {mean['ssim']:.4f} " if math.isfinite(mean["ssim"]) else " ")
                + f"({vcfg.protocol}, {len(self.val)} images){' *best*' if improved else ''}"
            )
            if improved:
                best.clear()
                best.update(
                    {
                        "metric": vcfg.metric,
                        "value": value,
                        "psnr": mean["psnr"],
                        "ssim": mean["ssim"],
                        "iteration": it,
                        "set": str(vcfg.set),
                        "protocol": vcfg.protocol,
                    }
                )
                self.outputs.export(self.outputs.best_path(name), model, stage)
        if self.world > 1:
            shared = broadcast_object(dict(best), self.world)
            best.clear()
            best.update(shared)

    def _save(self, stage: StageState, *, done: bool) -> Path:
        """The stage's checkpoint at its iteration (written by rank 0; every rank's RNG states in it)."""
        rngs = gather_objects(capture_rng(), self.world)
        path = self.outputs.checkpoint_path(stage)
        if self.is_main:
            self.outputs.save_checkpoint(stage, self.g, rngs, items=self.data.items, done=done)
        barrier(self.world)
        return path


def train(cfg: TrainConfig, out_dir: Path | str, **options) -> TrainResult:
    """Train ``cfg`` into ``out_dir``; ``options`` are :class:`Trainer`'s (``data_root``, ``resume``,
    ``device``, ``echo``, ``force_resume``)."""
    return Trainer(cfg, out_dir=out_dir, **options).run()
