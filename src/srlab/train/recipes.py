"""One training stage's optimisation step: ``psnr`` (generator alone) and ``gan`` (generator + discriminator).

:class:`StageRunner` owns what a stage adds around the generator: optimisers and learning-rate schedules
(:mod:`srlab.train.optim`), losses, the discriminator, the generator's EMA, gradient scalers (fp16) and the
non-finite-loss policy. :meth:`StageRunner.step` runs one iteration on a batch; :class:`RunnerOptions` say
how it runs on the machine (channels_last, torch.compile, fused blocks, DDP).

The ESRGAN step (Wang et al. 2018, as in BasicSR): the generator is updated with
``pixel + perceptual + adversarial`` against a frozen discriminator, then the discriminator is updated on the
real batch and the detached generated batch (relativistic average: each prediction relative to the mean of
the other kind). Real and fake go through the discriminator in separate passes (its BatchNorm sees each
kind's own batch statistics). With ``d_first`` (the study's order) the discriminator is updated first, on the
generator's detached output, and the generator's adversarial loss then uses the updated discriminator; the
generator runs once per step (the study ran it a second time with unchanged weights, which gives the same
output). Which generator weights a stage exports: :mod:`srlab.train.keep`. Under DDP the generator is
wrapped in ``DistributedDataParallel`` and the discriminator's gradients are averaged across processes
explicitly (it runs two forward passes per backward).
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch import nn

from srlab.errors import ConfigError, SrlabError
from srlab.models.registry import build_model
from srlab.models.rrdbnet import set_fused_blocks
from srlab.runtime import compile_module
from srlab.train.config import StageConfig
from srlab.train.distributed import wrap_ddp
from srlab.train.keep import BestWeights
from srlab.train.losses import PerceptualLoss, gan_d_loss, gan_g_loss, pixel_loss
from srlab.train.optim import build_optimizer, lr_at
from srlab.train.runner_options import RunnerOptions, _Upsampled, centre_like

__all__ = ["NonFiniteLossError", "RunnerOptions", "StageRunner"]


class NonFiniteLossError(SrlabError):
    """A loss became NaN or infinite."""


class StageRunner:
    """Optimisation state and step of one stage (see the module docstring)."""

    def __init__(
        self,
        name: str,
        cfg: StageConfig,
        generator: nn.Module,
        *,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        seed: int,
        options: RunnerOptions | None = None,
        sync_checks: bool | None = None,
        log=None,
    ) -> None:
        opts = options or RunnerOptions()
        compile, compile_mode, ddp = opts.compile, opts.compile_mode, opts.ddp
        self.name, self.cfg, self.device, self.options = name, cfg, device, opts
        self.amp_dtype = amp_dtype
        self.cuda = device.type == "cuda"
        # None: CUDA only; True: also on the CPU (oneDNN's NHWC kernels)
        cl = opts.channels_last
        self.channels_last = (cl is not False) if self.cuda else (cl is True and device.type == "cpu")
        self.ddp = ddp
        self.g = generator
        self.skipped = 0
        # Per-step host synchronisation for the NaN check only where it is free (CPU) or needed (skipping).
        self.sync_checks = (not self.cuda or cfg.skip_nonfinite) if sync_checks is None else bool(sync_checks)
        self._first_bad = torch.full((), -1, dtype=torch.long, device=device)
        say = log or (lambda _m: None)
        if opts.pre_upsampled and not hasattr(generator, "forward_upsampled"):
            raise ConfigError("data.pre_upsample is set but the model has no forward_upsampled (SRCNN only)")
        g_train: nn.Module = (
            _Upsampled(generator, unpadded=opts.unpadded) if opts.pre_upsampled else generator
        )
        if opts.fused_blocks:
            if not set_fused_blocks(generator, True):
                say(
                    f"stage {name}: runtime.fused_blocks is set but the generator has no dense blocks; ignored"
                )
        # reduce-overhead (CUDA graphs) reuses output buffers between calls: steps are marked and the
        # discriminator's outputs cloned (they are used after the next call of D).
        self._cudagraphs = bool(compile) and compile_mode in ("reduce-overhead", "max-autotune")
        if self.channels_last:
            generator.to(memory_format=torch.channels_last)
        if ddp:
            g_train = wrap_ddp(g_train, [opts.local_rank] if self.cuda else None)
        self._g_eager = g_train
        self._compile_pending = bool(compile)
        self._say = say
        if compile:
            g_train = compile_module(g_train, compile_mode)
        self.g_train = g_train

        self.opt_g = build_optimizer(
            list(generator.named_parameters()), cfg.optim, cuda=self.cuda, path=f"stages.{name}.optim"
        )
        fp16 = amp_dtype == torch.float16 and self.cuda
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=fp16)
        self.losses = cfg.losses
        self.perceptual: PerceptualLoss | None = None
        self.perceptual_source = "none"
        if cfg.losses.perceptual != "none":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + 7)
                self.perceptual = PerceptualLoss(
                    cfg.losses.perceptual_layers,
                    normalize=cfg.losses.perceptual_normalize,
                    criterion=cfg.losses.perceptual_criterion,
                    weights=cfg.losses.perceptual_weights,
                ).to(device)
            self.perceptual_source = self.perceptual.weights_source
            if self.perceptual_source == "random":
                say(
                    f"stage {name}: WARNING the perceptual loss uses RANDOM VGG19 weights "
                    "(perceptual_weights: random); this is recorded in checkpoints and exports"
                )
            if self.channels_last:
                self.perceptual.to(memory_format=torch.channels_last)

        self.d: nn.Module | None = None
        self.opt_d = None
        self.scaler_d = None
        if cfg.kind == "gan":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + 1)
                d, _ = build_model(cfg.discriminator.name, **cfg.discriminator.hparams)
            self.d = d.to(device)
            if self.channels_last:
                self.d.to(memory_format=torch.channels_last)
            self.d_train = compile_module(self.d, compile_mode) if compile else self.d
            self.opt_d = build_optimizer(
                list(self.d.named_parameters()), cfg.optim_d, cuda=self.cuda, path=f"stages.{name}.optim_d"
            )
            self.scaler_d = torch.amp.GradScaler("cuda", enabled=fp16)
            if ddp:
                for t in self.d.state_dict().values():
                    dist.broadcast(t, 0)

        self.ema: nn.Module | None = None
        if cfg.ema > 0:
            self.ema = copy.deepcopy(generator).eval()
            for p in self.ema.parameters():
                p.requires_grad_(False)
        self.best = BestWeights(generator, sync=self.sync_checks) if cfg.keep == "best_train_loss" else None

    # ------------------------------------------------------------------------------------------ helpers
    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def set_lr(self, it: int) -> float:
        total = self.cfg.iterations
        for g in self.opt_g.param_groups:
            g["lr"] = lr_at(self.cfg.schedule, g["base_lr"], it, total)
        if self.opt_d is not None:
            sd = self.cfg.schedule_d or self.cfg.schedule
            for g in self.opt_d.param_groups:
                g["lr"] = lr_at(sd, g["base_lr"], it, total)
        return float(self.opt_g.param_groups[0]["lr"])

    def eval_model(self) -> nn.Module:
        """The generator to validate and export: the EMA when enabled."""
        return self.ema if self.ema is not None else self.g

    def keep_result(self) -> dict | None:
        """At the stage's end: load the weights ``keep`` names into the generator; what was kept (None for
        ``last``)."""
        if self.best is None:
            return None
        self.best.apply()
        return self.best.info()

    def _all_finite(self, it: int, *losses: torch.Tensor) -> bool:
        """Whether the losses are finite. Synchronises (and, under DDP, agrees across ranks) only when a
        decision is needed now: on CPU, or with skip_nonfinite. Otherwise the flag stays on the device and
        :meth:`check_finite` raises later (the caller checks before logging, validating and saving)."""
        ok = torch.stack([torch.isfinite(x.detach().float()).all() for x in losses]).all()
        if not self.sync_checks:
            bad_now = ~ok
            self._first_bad = torch.where(bad_now & (self._first_bad < 0), it, self._first_bad)
            return True
        okf = ok.float()
        if self.ddp:
            dist.all_reduce(okf, op=dist.ReduceOp.MIN)
        return bool(okf.item() > 0)

    def check_finite(self) -> None:
        """Raise NonFiniteLossError if a deferred check saw a non-finite loss (all ranks raise together)."""
        if self.sync_checks:
            return
        first = self._first_bad.clone()
        if self.ddp:
            dist.all_reduce(first, op=dist.ReduceOp.MAX)
        it = int(first.item())
        if it >= 0:
            raise NonFiniteLossError(
                f"stage {self.name}: the loss became non-finite at iteration {it + 1}; lower the learning rate, "
                "set grad_clip, or set skip_nonfinite: true to skip such steps"
            )

    def _nonfinite(self, it: int, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
        if self.cfg.skip_nonfinite:
            self.skipped += 1
            self.opt_g.zero_grad(set_to_none=True)
            if self.opt_d is not None:
                self.opt_d.zero_grad(set_to_none=True)
            return None
        vals = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in parts.items())
        raise NonFiniteLossError(
            f"stage {self.name}: the loss became non-finite at iteration {it + 1} ({vals}); lower the learning "
            "rate, set grad_clip, or set skip_nonfinite: true to skip such steps"
        )

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        with torch.no_grad():
            e = [p for p in self.ema.parameters()]
            g = [p.detach() for p in self.g.parameters()]
            torch._foreach_lerp_(e, g, 1.0 - self.cfg.ema)
            for be, bg in zip(self.ema.buffers(), self.g.buffers()):
                be.copy_(bg)

    def _gen_losses(self, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        L = self.losses
        parts: dict[str, torch.Tensor] = {}
        srf = sr.float()
        hr = centre_like(hr, srf)
        if L.pixel != "none" and L.pixel_weight:
            parts["l_pix"] = L.pixel_weight * pixel_loss(L.pixel, srf, hr)
        if self.perceptual is not None and L.perceptual_weight:
            with self.autocast():
                parts["l_percep"] = L.perceptual_weight * self.perceptual(sr, hr)
        return parts

    # --------------------------------------------------------------------------------------------- step
    def step(self, lr: torch.Tensor, hr: torch.Tensor, it: int) -> dict[str, torch.Tensor] | None:
        """One optimisation step; returns the (detached) losses, or None when a non-finite step was skipped.

        With ``compile``, a compilation failure on the first step (e.g. PyTorch cannot compile the backward
        of SRCNN's replicate padding) falls back to eager execution with a message, once.
        """
        if not self._compile_pending:
            return self._step(lr, hr, it)
        self._compile_pending = False
        try:
            return self._step(lr, hr, it)
        except (SrlabError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - dynamo/inductor raise many kinds
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            first = lines[0][:160] if lines else ""
            self._say(
                f"stage {self.name}: torch.compile failed ({type(exc).__name__}: {first}); running eagerly"
            )
            self.g_train = self._g_eager
            if self.d is not None:
                self.d_train = self.d
                for p in self.d.parameters():
                    p.requires_grad_(True)
            self.opt_g.zero_grad(set_to_none=True)
            if self.opt_d is not None:
                self.opt_d.zero_grad(set_to_none=True)
            return self._step(lr, hr, it)

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        out = self.d_train(x)
        return out.clone() if self._cudagraphs and self.d_train is not self.d else out

    def _step(self, lr: torch.Tensor, hr: torch.Tensor, it: int) -> dict[str, torch.Tensor] | None:
        if self._cudagraphs and self.cuda:
            torch.compiler.cudagraph_mark_step_begin()
        if self.channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
            hr = hr.contiguous(memory_format=torch.channels_last)
        if self.d is None:
            return self._step_psnr(lr, hr, it)
        return self._step_gan(lr, hr, it)

    def _backward_step(self, loss, opt, scaler, params) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        scaler.step(opt)
        scaler.update()

    def _step_psnr(self, lr, hr, it):
        with self.autocast():
            sr = self.g_train(lr)
        parts = self._gen_losses(sr, hr)
        total = sum(parts.values())
        if not self._all_finite(it, total):
            return self._nonfinite(it, parts)
        self._g_update(total, it)
        out = {k: v.detach() for k, v in parts.items()}
        out["l_total"] = total.detach()
        return out

    def _step_gan(self, lr, hr, it):
        if self.cfg.d_first:
            return self._step_gan_d_first(lr, hr, it)
        d = self.d
        # --- generator, discriminator frozen
        for p in d.parameters():
            p.requires_grad_(False)
        with self.autocast():
            sr = self.g_train(lr)
        # under CUDA graphs the generator's output buffer may be reused by a later replay: keep a copy for D
        sr_d = sr.detach().clone() if self._cudagraphs else sr.detach()
        parts, total_g = self._g_adversarial(sr, hr)
        if not self._all_finite(it, total_g):
            for p in d.parameters():
                p.requires_grad_(True)
            return self._nonfinite(it, parts)
        self._g_update(total_g, it)
        # --- discriminator
        for p in d.parameters():
            p.requires_grad_(True)
        res = self._d_update(hr, sr_d, it, fake_first=False)
        return None if res is None else self._gan_out(parts, total_g, *res)

    def _step_gan_d_first(self, lr, hr, it):
        d = self.d
        with self.autocast():
            sr = self.g_train(lr)
        sr_d = sr.detach().clone() if self._cudagraphs else sr.detach()
        # --- discriminator first, on the detached output (fake before real, the study's order of passes)
        res = self._d_update(hr, sr_d, it, fake_first=True)
        if res is None:
            return None
        # --- generator against the updated discriminator, frozen
        for p in d.parameters():
            p.requires_grad_(False)
        try:
            parts, total_g = self._g_adversarial(sr, hr)
            if not self._all_finite(it, total_g):
                return self._nonfinite(it, parts)
            self._g_update(total_g, it)
        finally:
            for p in d.parameters():
                p.requires_grad_(True)
        return self._gan_out(parts, total_g, *res)

    def _g_adversarial(self, sr, hr):
        """The generator's losses (pixel, perceptual, adversarial against D as it is now) and their sum."""
        L = self.losses
        parts = self._gen_losses(sr, hr)
        with self.autocast():
            real_pred = self._d(hr).detach()
            fake_pred = self._d(sr)
        parts["l_gan"] = L.gan_weight * gan_g_loss(L.gan, real_pred.float(), fake_pred.float())
        return parts, sum(parts.values())

    def _g_update(self, total_g, it) -> None:
        if self.best is not None:
            self.best.offer(total_g, it)
        self._backward_step(total_g, self.opt_g, self.scaler_g, self.g.parameters())
        self._update_ema()

    def _d_update(self, hr, sr_d, it, *, fake_first: bool):
        """One discriminator step on the real and the detached generated batch: ``(l_d, real_pred,
        fake_pred)``, or None when a non-finite step was skipped."""
        d = self.d
        with self.autocast():
            if fake_first:
                fake_pred = self._d(sr_d)
                real_pred = self._d(hr)
            else:
                real_pred = self._d(hr)
                fake_pred = self._d(sr_d)
        l_d = gan_d_loss(self.losses.gan, real_pred.float(), fake_pred.float())
        if not self._all_finite(it, l_d):
            return self._nonfinite(it, {"l_d": l_d})
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(l_d).backward()
        if self.ddp:
            self._average_d_grads()
        if self.cfg.grad_clip > 0:
            self.scaler_d.unscale_(self.opt_d)
            torch.nn.utils.clip_grad_norm_(d.parameters(), self.cfg.grad_clip)
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return l_d, real_pred, fake_pred

    @staticmethod
    def _gan_out(parts, total_g, l_d, real_pred, fake_pred) -> dict[str, torch.Tensor]:
        out = {k: v.detach() for k, v in parts.items()}
        out["l_g_total"] = total_g.detach()
        out["l_d"] = l_d.detach()
        out["d_real"] = real_pred.detach().float().mean()
        out["d_fake"] = fake_pred.detach().float().mean()
        return out

    def _average_d_grads(self) -> None:
        grads = [p.grad for p in self.d.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        off = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[off : off + n].view_as(g))
            off += n

    # ---------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        st = {
            "opt_g": self.opt_g.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "skipped": self.skipped,
        }
        if self.d is not None:
            st["opt_d"] = self.opt_d.state_dict()
            st["scaler_d"] = self.scaler_d.state_dict()
        if self.best is not None:
            st["best_train_loss"] = self.best.state_dict()[0]
        return st

    def model_states(self) -> dict:
        out = {}
        if self.d is not None:
            out["d"] = self.d.state_dict()
        if self.ema is not None:
            out["ema"] = self.ema.state_dict()
        if self.best is not None and self.best.state is not None:
            out["best_g"] = self.best.state
        return out

    def load_state_dict(self, st: dict, models: dict) -> None:
        self.opt_g.load_state_dict(st["opt_g"])
        if st.get("scaler_g"):
            self.scaler_g.load_state_dict(st["scaler_g"])
        self.skipped = int(st.get("skipped", 0))
        if self.d is not None:
            if "d" not in models or "opt_d" not in st:
                raise SrlabError(f"the checkpoint of stage {self.name} has no discriminator state")
            self.d.load_state_dict(models["d"])
            self.opt_d.load_state_dict(st["opt_d"])
            if st.get("scaler_d"):
                self.scaler_d.load_state_dict(st["scaler_d"])
        if self.ema is not None:
            if "ema" in models:
                self.ema.load_state_dict(models["ema"])
            else:
                self.ema.load_state_dict(self.g.state_dict())
        if self.best is not None:
            pos = st.get("best_train_loss")
            if pos and "best_g" not in models:
                raise SrlabError(f"the checkpoint of stage {self.name} has no best_train_loss weights")
            self.best.load_state_dict(pos or {}, models.get("best_g"), self.device)
