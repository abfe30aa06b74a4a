"""Spandrel-backed families: upstream SR networks (SwinIR, HAT, DAT, ...) built and trained by name.

spandrel (``pip install "srlab[archs]"``) vendors the upstream code of each network. Each row of
:data:`UPSTREAM` becomes an :class:`~srlab.models.registry.Architecture` record with ``backend="spandrel"``:
its builder imports that one network's module on first use (nothing here imports spandrel), its
``constructor`` is the upstream class, so ``model.hparams`` are checked against the upstream signature,
and its presets follow each paper (the source is named in every preset's doc). Where srlab has its own
network (``esrgan`` = ``rrdbnet``, ``compact`` = ``srvgg``, later ``span``) the native family registered
first keeps the name.

The built network is wrapped in :class:`SpandrelNet`, whose state dict is the upstream network's own
(upstream key names, no prefix): what srlab saves loads back in srlab (through this registry, with the
recorded hyper-parameters) and in spandrel's own loader. Its descriptor (scale, channels, size
requirements, fp16/bf16 support) is what spandrel's architecture reads from those tensors.

torchvision: spandrel's package ``__init__`` registers every architecture it has, and LaMa's imports
torchvision. Where torchvision cannot be imported, an architecture's own module is imported without that
registry (the package object is created but its ``__init__`` is not run, for the one import); none of the
networks offered here needs torchvision. A network that does gets one line saying how to install it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from srlab.errors import ConfigError
from srlab.models.registry import Architecture, EngineHints, Preset, refuse, register
from srlab.models.spandrel_net import SpandrelNet, UpstreamClass

__all__ = ["REFUSED", "UPSTREAM", "Upstream"]


# ------------------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Upstream:
    name: str  # srlab's name (lower case)
    ident: str  # spandrel's architecture id and folder
    module: str  # the module under spandrel.architectures.<ident> holding the network
    cls: str
    summary: str
    source: str
    presets: tuple[Preset, ...] = ()
    select: Callable[..., tuple[str, dict[str, Any]]] | None = None  # hparams -> (class, kwargs)
    no_onnx: str = ""  # why it does not export to ONNX (torch.onnx, opset 17)


def _realcugan(*, scale: int = 2, in_channels: int = 3, out_channels: int = 3, pro: bool = False):
    if scale not in (2, 3, 4):
        raise ConfigError(f"realcugan scale {scale} is not 2, 3 or 4")
    return f"UpCunet{scale}x", dict(in_channels=in_channels, out_channels=out_channels, pro=pro)


def _scales(stem: str, doc: str, key: str, scales=(2, 3, 4), **hp: Any) -> tuple[Preset, ...]:
    """``<stem>-x2`` ... presets of the architecture ``stem`` names first, ``key`` its scale keyword."""
    arch = stem.split("-")[0]
    return tuple(Preset(f"{stem}-x{s}", arch, doc, {key: s, **hp}, scale=s) for s in scales)


_SWINIR = "SwinIR (Liang et al. 2021), KAIR main_test_swinir.py"
_SWIN6 = dict(depths=[6] * 6, num_heads=[6] * 6)
UPSTREAM: tuple[Upstream, ...] = (
    Upstream(
        "swinir",
        "SwinIR",
        "SwinIR",
        "SwinIR",
        "SwinIR: Swin-transformer image restoration",
        _SWINIR,
        _scales(
            "swinir-light",
            f"lightweight SR ({_SWINIR})",
            "upscale",
            img_size=64,
            window_size=8,
            embed_dim=60,
            depths=[6] * 4,
            num_heads=[6] * 4,
            mlp_ratio=2.0,
            upsampler="pixelshuffledirect",
            img_range=1.0,
            resi_connection="1conv",
        )
        + _scales(
            "swinir-classical",
            f"classical SR, DIV2K patch 48 ({_SWINIR})",
            "upscale",
            img_size=48,
            window_size=8,
            embed_dim=180,
            **_SWIN6,
            mlp_ratio=2.0,
            upsampler="pixelshuffle",
            img_range=1.0,
            resi_connection="1conv",
        ),
    ),
    Upstream(
        "hat",
        "HAT",
        "HAT",
        "HAT",
        "HAT: hybrid attention transformer",
        "Chen et al. 2023, XPixelGroup/HAT options/test/HAT_SRx4.yml, HAT-S_SRx4.yml",
        _scales(
            "hat",
            "HAT (XPixelGroup/HAT HAT_SRx*.yml)",
            "upscale",
            img_size=64,
            window_size=16,
            embed_dim=180,
            **_SWIN6,
            compress_ratio=3,
            squeeze_factor=30,
            conv_scale=0.01,
            overlap_ratio=0.5,
            mlp_ratio=2.0,
            upsampler="pixelshuffle",
            resi_connection="1conv",
        )
        + _scales(
            "hat-s",
            "HAT-S (XPixelGroup/HAT HAT-S_SRx*.yml)",
            "upscale",
            img_size=64,
            window_size=16,
            embed_dim=144,
            **_SWIN6,
            compress_ratio=24,
            squeeze_factor=24,
            conv_scale=0.01,
            overlap_ratio=0.5,
            mlp_ratio=2.0,
            upsampler="pixelshuffle",
            resi_connection="1conv",
        ),
    ),
    Upstream(
        "dat",
        "DAT",
        "DAT",
        "DAT",
        "DAT: dual aggregation transformer",
        "Chen et al. ICCV 2023, zhengchen1999/DAT options/Test/test_DAT_x*.yml",
        _scales(
            "dat",
            "DAT (zhengchen1999/DAT test_DAT_x*.yml)",
            "upscale",
            img_size=64,
            embed_dim=180,
            split_size=[8, 32],
            depth=[6] * 6,
            num_heads=[6] * 6,
            expansion_factor=4.0,
            resi_connection="1conv",
        )
        + _scales(
            "dat-s",
            "DAT-S (zhengchen1999/DAT test_DAT_S_x*.yml)",
            "upscale",
            img_size=64,
            embed_dim=180,
            split_size=[8, 16],
            depth=[6] * 6,
            num_heads=[6] * 6,
            expansion_factor=2.0,
            resi_connection="1conv",
        ),
    ),
    Upstream(
        "atd",
        "ATD",
        "atd_arch",
        "ATD",
        "ATD: adaptive token dictionary transformer",
        "Zhang et al. CVPR 2024, LabShuHangGU/Adaptive-Token-Dictionary options/test/*.yml",
        _scales(
            "atd",
            "ATD (Adaptive-Token-Dictionary test_ATD_SRx*.yml)",
            "upscale",
            img_size=96,
            embed_dim=210,
            **_SWIN6,
            window_size=16,
            category_size=256,
            num_tokens=128,
            reducted_dim=20,
            convffn_kernel_size=5,
            mlp_ratio=2.0,
            upsampler="pixelshuffle",
            resi_connection="1conv",
        )
        + _scales(
            "atd-light",
            "ATD-light (Adaptive-Token-Dictionary test_ATD_light_SRx*.yml)",
            "upscale",
            img_size=64,
            embed_dim=48,
            depths=[6] * 4,
            num_heads=[4] * 4,
            window_size=16,
            category_size=128,
            num_tokens=64,
            reducted_dim=8,
            convffn_kernel_size=7,
            mlp_ratio=1.0,
            upsampler="pixelshuffledirect",
            resi_connection="1conv",
        ),
        no_onnx="its token dictionary sorts with torch.sort, which torch.onnx cannot export",
    ),
    Upstream(
        "drct",
        "DRCT",
        "drct_arch",
        "DRCT",
        "DRCT: dense residual connected transformer",
        "Hsu et al. CVPRW 2024, ming053l/DRCT options/test/DRCT_SRx4.yml",
        _scales(
            "drct",
            "DRCT (ming053l/DRCT DRCT_SRx*.yml)",
            "upscale",
            img_size=64,
            window_size=16,
            embed_dim=180,
            **_SWIN6,
            mlp_ratio=2.0,
            gc=32,
            upsampler="pixelshuffle",
            resi_connection="1conv",
        ),
    ),
    Upstream(
        "rgt",
        "RGT",
        "rgt",
        "RGT",
        "RGT: recursive generalisation transformer",
        "Chen et al. ICLR 2024, zhengchen1999/RGT options/Test/test_RGT_x*.yml",
        _scales(
            "rgt",
            "RGT (zhengchen1999/RGT test_RGT_x*.yml)",
            "upscale",
            img_size=64,
            embed_dim=180,
            depth=[6] * 8,
            num_heads=[6] * 8,
            mlp_ratio=2.0,
            split_size=[8, 32],
            c_ratio=0.5,
            resi_connection="1conv",
        )
        + _scales(
            "rgt-s",
            "RGT-S (zhengchen1999/RGT test_RGT_S_x*.yml)",
            "upscale",
            img_size=64,
            embed_dim=180,
            depth=[6] * 6,
            num_heads=[6] * 6,
            mlp_ratio=2.0,
            split_size=[8, 32],
            c_ratio=0.5,
            resi_connection="1conv",
        ),
    ),
    Upstream(
        "swin2sr",
        "Swin2SR",
        "Swin2SR",
        "Swin2SR",
        "Swin2SR: SwinV2 transformer for SR",
        "Conde et al. ECCVW 2022, mv-lab/swin2sr main_test_swin2sr.py",
        _scales(
            "swin2sr-classical",
            "classical SR (mv-lab/swin2sr main_test_swin2sr.py)",
            "upscale",
            img_size=64,
            window_size=8,
            embed_dim=180,
            **_SWIN6,
            mlp_ratio=2.0,
            upsampler="pixelshuffle",
            resi_connection="1conv",
        )
        + _scales(
            "swin2sr-light",
            "lightweight SR (mv-lab/swin2sr main_test_swin2sr.py)",
            "upscale",
            img_size=64,
            window_size=8,
            embed_dim=60,
            depths=[6] * 4,
            num_heads=[6] * 4,
            mlp_ratio=2.0,
            upsampler="pixelshuffledirect",
            resi_connection="1conv",
        ),
    ),
    Upstream(
        "span",
        "SPAN",
        "span",
        "SPAN",
        "SPAN: swift parameter-free attention network",
        "Wan et al. CVPRW 2024 (NTIRE 2024 ESR), hongyuanyu/SPAN basicsr/archs/span_arch.py",
        _scales(
            "span",
            "SPAN, 48 features (hongyuanyu/SPAN)",
            "upscale",
            num_in_ch=3,
            num_out_ch=3,
            feature_channels=48,
        ),
    ),
    Upstream(
        "omnisr",
        "OmniSR",
        "OmniSR",
        "OmniSR",
        "Omni-SR: omni self-attention network",
        "Wang et al. CVPR 2023, Francis0625/Omni-SR options (feature 64, res_num 5, window 8)",
        _scales(
            "omnisr",
            "Omni-SR (Francis0625/Omni-SR)",
            "up_scale",
            num_feat=64,
            block_num=1,
            pe=True,
            window_size=8,
            res_num=5,
            bias=True,
        ),
    ),
    Upstream(
        "safmn",
        "SAFMN",
        "safmn",
        "SAFMN",
        "SAFMN: spatially-adaptive feature modulation network",
        "Sun et al. ICCV 2023, sunny2109/SAFMN options (dim 36, 8 blocks, ffn 2.0)",
        _scales("safmn", "SAFMN (sunny2109/SAFMN)", "upscaling_factor", dim=36, n_blocks=8, ffn_scale=2.0),
        no_onnx="its adaptive max-pooling to an input-dependent size has no ONNX export",
    ),
    Upstream(
        "plksr",
        "PLKSR",
        "PLKSR",
        "PLKSR",
        "PLKSR: partial large kernel CNN",
        "Lee & Park 2024, dslisleedh/PLKSR (PLKSR: 28 blocks, kernel 17; tiny: 12 blocks, kernel 13)",
        _scales(
            "plksr",
            "PLKSR (dslisleedh/PLKSR)",
            "upscaling_factor",
            dim=64,
            n_blocks=28,
            kernel_size=17,
            split_ratio=0.25,
            ccm_type="DCCM",
            lk_type="PLK",
            use_ea=True,
        )
        + _scales(
            "plksr-tiny",
            "PLKSR-tiny (dslisleedh/PLKSR)",
            "upscaling_factor",
            dim=64,
            n_blocks=12,
            kernel_size=13,
            split_ratio=0.25,
            ccm_type="DCCM",
            lk_type="PLK",
            use_ea=False,
        ),
    ),
    Upstream(
        "rcan",
        "RCAN",
        "rcan_arch",
        "RCAN",
        "RCAN: residual channel attention network",
        "Zhang et al. ECCV 2018, yulunzhang/RCAN (10 groups x 20 blocks, 64 features, reduction 16)",
        _scales(
            "rcan",
            "RCAN (yulunzhang/RCAN)",
            "scale",
            n_resgroups=10,
            n_resblocks=20,
            n_feats=64,
            reduction=16,
            rgb_range=255,
        ),
    ),
    Upstream(
        "craft",
        "CRAFT",
        "CRAFT",
        "CRAFT",
        "CRAFT: cross-refinement adaptive feature transformer",
        "Li et al. ICCV 2023, AVC2-UESTC/CRAFT-SR (embed 48, depths 2x4, heads 6, window 16)",
        _scales(
            "craft",
            "CRAFT (AVC2-UESTC/CRAFT-SR)",
            "upscale",
            window_size=16,
            embed_dim=48,
            depths=[2] * 4,
            num_heads=[6] * 4,
            split_size_0=4,
            split_size_1=16,
            mlp_ratio=2.0,
            resi_connection="1conv",
        ),
    ),
    Upstream(
        "realcugan",
        "RealCUGAN",
        "upcunet_v3",
        "UpCunet2x",
        "Real-CUGAN: anime UNet cascade (x2/x3/x4)",
        "bilibili/ailab Real-CUGAN upcunet_v3.py",
        _scales("realcugan", "Real-CUGAN (bilibili/ailab)", "scale"),
        select=_realcugan,
    ),
    # srlab's own networks keep these names (registered first): listed so the aliases are documented
    Upstream("esrgan", "ESRGAN", "RRDB", "RRDBNet", "ESRGAN (native: rrdbnet)", "Wang et al. 2018"),
    Upstream("compact", "Compact", "SRVGG", "SRVGGNetCompact", "Compact (native: srvgg)", "Real-ESRGAN"),
)

# spandrel architectures srlab does not build, and why (one line each)
REFUSED = {
    "lama": "LaMa is inpainting: it needs a mask as well as the image",
    "mat": "MAT is inpainting: it needs a mask as well as the image",
    "gfpgan": "GFPGAN restores aligned face crops and needs its StyleGAN decoder weights",
    "codeformer": "CodeFormer restores aligned face crops and needs its codebook weights",
    "restoreformer": "RestoreFormer restores aligned face crops and needs its codebook weights",
    "femasr": "FeMaSR needs its pretrained VQ codebook weights",
    "drunet": "DRUNet takes a noise-level map as a second input",
    "dncnn": "DnCNN is a denoiser (scale 1) whose FDnCNN variant takes a noise-level map",
    "fbcnn": "FBCNN takes a JPEG quality factor as a second input",
    "ipt": "IPT is one multi-task model selected per task and scale at run time",
    "aurasr": "AuraSR is a GAN upsampler that needs its style network weights",
    "mmrealsr": "MMRealSR takes degradation embeddings as extra inputs",
}


def _record(up: Upstream) -> Architecture:
    ctor = UpstreamClass(up)

    def build(**hp: Any) -> SpandrelNet:
        return SpandrelNet(up.name, up.ident, ctor(**hp), hp)

    return Architecture(
        family=up.name,
        summary=up.summary,
        source=up.source,
        builders={up.name: build},
        constructor=ctor,
        presets=up.presets,
        hints=EngineHints(no_onnx=up.no_onnx),
        arch_ids=(f"spandrel:{up.ident}",),  # the same network loaded from a foreign file
        backend="spandrel",
        meta_build=False,  # upstream constructors compute buffers and drop-path rates with real tensors
    )


for _up in UPSTREAM:
    register(_record(_up), yield_to_native=True)
for _name, _why in REFUSED.items():
    refuse(_name, _why)
