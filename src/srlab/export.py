"""Export models to ONNX and run them with ONNX Runtime behind the usual ``model(lr) -> sr`` interface.

- :func:`export_onnx` writes an ONNX graph with dynamic batch, height and width, and the srlab descriptor in
  the model's ``metadata_props`` (key ``srlab``). SRCNN's built-in interpolation (MATLAB bicubic builds
  size-dependent matrices) is not part of the graph: the graph holds the three convolutions and
  :class:`OnnxModel` interpolates before calling it, exactly like :meth:`SRCNN.forward`.
- :class:`OnnxModel` wraps an ``onnxruntime.InferenceSession`` as a torch module, so the tiler, evaluation
  and benchmarks use it unchanged (``srlab upscale --backend onnxruntime``).
- :func:`cached_onnx` exports once per (weights, architecture) into the cache (``<cache root>/onnx``,
  :func:`srlab.runtime.cache_dir`) and reuses the file; a cached file that no longer opens is exported
  again. Exports are atomic (temporary file, then rename) with the mode the umask gives.

onnx/onnxruntime are optional (``pip install "srlab[onnx]"``) and imported only here, lazily.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from srlab.atomic import atomic_path
from srlab.errors import ConfigError, SrlabError
from srlab.imaging.resize import upsample
from srlab.models.registry import ModelDescriptor, describe
from srlab.runtime import cache_dir
from srlab.serialize import dumps, loads

__all__ = [
    "OnnxFileError",
    "OnnxModel",
    "cached_onnx",
    "cached_onnx_path",
    "export_onnx",
    "onnxruntime_available",
    "weights_digest",
]


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _graph_module(model: nn.Module) -> tuple[nn.Module, str | None]:
    """The part of ``model`` that goes into the graph, and the pre-interpolation it needs (if any)."""
    arch = getattr(model, "arch", "")
    if arch == "srcnn":

        class _Core(nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m.forward_upsampled(x)

        return _Core(model), (model.upsampler if model.scale != 1 else None)
    if arch in ("bicubic", "bilinear", "nearest", "interpolation"):
        raise ConfigError(f"{arch} interpolation has no weights: there is nothing to export to ONNX")
    return model, None


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    descriptor: ModelDescriptor | None = None,
    opset: int = 17,
    sample_size: int = 32,
) -> Path:
    """Export ``model`` to ``path`` (written atomically). Returns the path."""
    try:
        import onnx
    except ImportError:
        raise SrlabError('ONNX export needs the onnx package: pip install "srlab[onnx]"') from None
    descriptor = descriptor or describe(model)
    core, pre = _graph_module(model)
    core = core.eval().float()
    mult = max(1, descriptor.size_multiple)
    size = -(-sample_size // mult) * mult
    if pre is not None:
        size *= descriptor.scale
    x = torch.rand(1, descriptor.in_channels, size, size)
    path = Path(path)
    with atomic_path(path, suffix=".onnx") as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                core,
                (x,),
                tmp,
                dynamo=False,
                input_names=["lr"],
                output_names=["sr"],
                dynamic_axes={
                    "lr": {0: "batch", 2: "height", 3: "width"},
                    "sr": {0: "batch", 2: "out_height", 3: "out_width"},
                },
                opset_version=opset,
            )
        graph = onnx.load(tmp)
        meta = {"descriptor": descriptor.to_dict(), "pre_interpolation": pre}
        entry = graph.metadata_props.add()
        entry.key, entry.value = "srlab", dumps(meta, indent=None)
        onnx.save(graph, tmp)
    return path


class OnnxFileError(SrlabError):
    """An ONNX file that cannot be opened (unreadable, truncated, without srlab metadata)."""

    def __init__(self, path: Path, reason: str, fix: str = "re-export it with `srlab export`") -> None:
        super().__init__(f"{path}: {reason}; {fix}")
        self.reason = reason


class OnnxModel(nn.Module):
    """An ONNX Runtime session behaving like an srlab model (float NCHW in [0, 1] in and out)."""

    def __init__(
        self, path: str | os.PathLike, *, threads: int | None = None, providers: list[str] | None = None
    ):
        super().__init__()
        try:
            import onnx
            import onnxruntime as ort
        except ImportError:
            raise SrlabError('the onnxruntime backend needs: pip install "srlab[onnx]"') from None
        self.path = Path(path)
        try:
            graph = onnx.load(str(self.path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - any decode error is a bad file
            raise OnnxFileError(self.path, f"not a readable ONNX model ({exc.__class__.__name__})") from None
        props = {p.key: p.value for p in graph.metadata_props}
        if "srlab" not in props:
            raise OnnxFileError(
                self.path, "ONNX model without srlab metadata", "export it with `srlab export`"
            )
        try:
            meta = loads(props["srlab"])
            self.descriptor = ModelDescriptor(**meta["descriptor"])
        except (ValueError, TypeError, KeyError) as exc:
            raise OnnxFileError(self.path, f"damaged srlab metadata ({exc.__class__.__name__})") from None
        self.pre_interpolation = meta.get("pre_interpolation")
        d = self.descriptor
        self.arch, self.scale, self.hparams = d.arch, d.scale, d.hparams
        self.in_channels, self.out_channels, self.color = d.in_channels, d.out_channels, d.color
        self.size_multiple, self.receptive_radius = d.size_multiple, d.receptive_radius
        self.supports_fp16 = self.supports_bf16 = False
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or torch.get_num_threads()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.enable_cpu_mem_arena = False  # the arena keeps each tile's peak for good: tiles must not add up
        try:
            self.session = ort.InferenceSession(
                str(self.path), so, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a bad graph
            detail = " ".join(str(exc).split())[:160]
            raise OnnxFileError(self.path, f"ONNX Runtime cannot open it ({detail})") from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_interpolation:
            x = upsample(x.float(), self.scale, self.pre_interpolation)
        out = self.session.run(None, {"lr": x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


def weights_digest(model: nn.Module) -> str:
    """A digest of ``model``'s architecture, hyper-parameters and weights (not of any library version): the
    same weights give the same digest wherever they were loaded from."""
    h = hashlib.sha256()
    d = describe(model)
    h.update(dumps({"arch": d.arch, "hparams": d.hparams}, indent=None, sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def _model_key(model: nn.Module) -> str:
    # the export depends on the exporter too: a new torch gets a new file
    return hashlib.sha256(f"{weights_digest(model)} torch {torch.__version__}".encode()).hexdigest()[:24]


def cached_onnx_path(model: nn.Module) -> Path:
    """The cached ONNX export of ``model`` (exported now when it is not there yet); not checked."""
    path = cache_dir("onnx") / f"{getattr(model, 'arch', 'model')}-{_model_key(model)}.onnx"
    if not path.exists():
        export_onnx(model, path)
    return path


def cached_onnx(model: nn.Module, **kw) -> OnnxModel:
    """Export ``model`` once into the cache (keyed by weights + hyper-parameters) and open it.

    A cached file that does not open (truncated by a crash or a full disk, damaged) is deleted and
    exported again, once, with a warning saying so."""
    existed = (cache_dir("onnx") / f"{getattr(model, 'arch', 'model')}-{_model_key(model)}.onnx").exists()
    path = cached_onnx_path(model)
    if not existed:
        return OnnxModel(path, **kw)
    try:
        return OnnxModel(path, **kw)
    except OnnxFileError as exc:
        path.unlink(missing_ok=True)
        export_onnx(model, path)
        warnings.warn(
            f"{path}: the cached ONNX export was broken ({exc.reason}); srlab deleted it and exported it again",
            stacklevel=2,
        )
    return OnnxModel(path, **kw)
