"""Property-based fuzzing of checkpoint loading: whatever the bytes, ``srlab.load_model`` loads a working
model or raises one srlab error line naming the file, never runs a pickle's code, and never holds much
more memory than the file itself."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import srlab  # noqa: E402
from memwatch import RssWatch, in_fresh_process  # noqa: E402
from srlab.errors import SrlabError  # noqa: E402
from srlab.models.registry import build_model  # noqa: E402
from srlab.weights.io import read_checkpoint, save_model  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm"),
]

RSS_BUDGET_MB = 256  # every file here is a few kB; loading one may not cost more than this
FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def work():
    with tempfile.TemporaryDirectory(prefix="srlab-fuzz-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def seeds(work):
    """Real small srlab / PyTorch files to mutate."""
    torch.manual_seed(0)
    vgg, _ = build_model("srvgg", scale=2, num_feat=4, num_conv=1)
    rrdb, _ = build_model("rrdbnet", scale=2, num_block=1, num_feat=4, num_grow_ch=2)
    srcnn, _ = build_model("srcnn", scale=2, num_channels=1, n1=4, n2=2, f1=3, f2=1, f3=3)
    out = {}
    for name, model in (("srvgg", vgg), ("rrdbnet", rrdb), ("srcnn", srcnn)):
        path = save_model(work / f"{name}.safetensors", model)
        out[name] = path.read_bytes()
        out[name + ".meta"] = read_checkpoint(path)[1]
        out[name + ".tensors"] = read_checkpoint(path)[0]
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        out[name + ".pth"] = buf.getvalue()
    return out


def _check(path: Path) -> None:
    """Loads and runs, or raises one srlab line naming the file; nothing else."""
    try:
        model, desc = srlab.load_model(path)
    except SrlabError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, repr(msg)
        assert str(path) in msg, msg
        return
    # it loaded: then it is a usable network of the declared kind
    m = max(1, desc.size_multiple) * 4
    with torch.no_grad():
        y = model(torch.rand(1, desc.in_channels, m, m))
    assert y.shape == (1, desc.out_channels, m * desc.scale, m * desc.scale)


def _header_end(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


# --------------------------------------------------------------------------------------------- safetensors
@st.composite
def mutated_safetensors(draw, seeds):
    base = draw(st.sampled_from(["srvgg", "rrdbnet", "srcnn"]))
    data = bytearray(seeds[base])
    end = min(len(data), _header_end(bytes(data)))
    kind = draw(
        st.sampled_from(["truncate", "flip", "flip", "length", "splice", "random", "header", "header"])
    )
    if kind == "header":  # a well-formed header that lies about a tensor (shape, dtype, offsets)
        header = json.loads(bytes(data[8:end]))
        names = sorted(k for k in header if k != "__metadata__")
        entry = header[draw(st.sampled_from(names))]
        field = draw(st.sampled_from(["shape", "shape", "dtype", "data_offsets"]))
        if field == "dtype":
            entry["dtype"] = draw(
                st.sampled_from(["F16", "BF16", "I8", "U8", "BOOL", "F64", "I64", "C64", "X"])
            )
        else:
            ints = st.one_of(st.integers(0, 8), st.integers(-(2**63), 2**64))
            entry[field] = draw(st.lists(ints, min_size=0, max_size=5))
        if draw(st.booleans()):
            header.pop("__metadata__", None)  # then the keys alone decide (the foreign-checkpoint path)
        raw = json.dumps(header).encode()
        return struct.pack("<Q", len(raw)) + raw + bytes(data[end:])
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "flip":  # mostly in the header, where a bit decides what is built
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, end - 1) if draw(st.booleans()) else st.integers(0, len(data) - 1))
            data[pos] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "length":
        n = draw(
            st.one_of(st.integers(0, 2**64 - 1), st.integers(end - 16, end + 16).filter(lambda v: v >= 0))
        )
        return struct.pack("<Q", n % 2**64) + bytes(data[8:])
    if kind == "splice":
        pos = draw(st.integers(8, end))
        chunk = draw(st.binary(min_size=1, max_size=24))
        return bytes(data[:pos] + chunk + data[pos + draw(st.integers(0, 24)) :])
    return draw(st.binary(min_size=0, max_size=300))


def _fuzz_safetensors(seeds, work) -> float:
    @FUZZ
    @given(st.data())
    def run(data):
        path = work / "mutated.safetensors"
        path.write_bytes(data.draw(mutated_safetensors(seeds)))
        _check(path)

    with RssWatch() as watch:
        run()
    return watch.growth_mb


def test_mutated_safetensors_files(seeds, work):
    growth = in_fresh_process(_fuzz_safetensors, seeds, work)
    assert growth < RSS_BUDGET_MB, f"loading grew resident memory by {growth:.0f} MB"


# --------------------------------------------------------------------------------------------- metadata
_VALUES = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 8, 64, -1, 10**8, 2**31, 2**63, 10**40, True, False, None, "", "prelu"]),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-5, 5), max_size=2),
)
_KEYS = [
    "scale",
    "num_feat",
    "num_conv",
    "num_block",
    "num_grow_ch",
    "num_in_ch",
    "num_out_ch",
    "act_type",
    "pixel_unshuffle",
    "num_channels",
    "n1",
    "n2",
    "f1",
    "f2",
    "f3",
    "upsampler",
    "padding_mode",
    "inner_arch",
    "inner_hparams",
    "bogus",
]


@st.composite
def mutated_metadata(draw, seeds):
    base = draw(st.sampled_from(["srvgg", "rrdbnet", "srcnn"]))
    meta = dict(seeds[base + ".meta"])
    hp = json.loads(meta["hparams"])
    hp.update(draw(st.dictionaries(st.sampled_from(_KEYS), _VALUES, min_size=1, max_size=3)))
    for key in draw(st.lists(st.sampled_from(sorted(hp)), max_size=2)):
        hp.pop(key, None)
    text = json.dumps(hp)
    meta["hparams"] = draw(st.sampled_from([text, text, text[: len(text) // 2], "", "[]", "1e999"]))
    meta["arch"] = draw(
        st.sampled_from([meta["arch"]] * 6 + ["srvgg", "rrdbnet", "srcnn", "resized", "bicubic", ""])
    )
    for key in draw(
        st.lists(st.sampled_from(["scale", "in_channels", "format_version", "color"]), max_size=2)
    ):
        meta[key] = draw(st.one_of(st.text(max_size=6), st.integers(-(2**65), 2**65).map(str)))
    return base, meta


def _fuzz_metadata(seeds, work) -> float:
    from safetensors.torch import save_file

    @FUZZ
    @given(mutated_metadata(seeds))
    def run(case):
        base, meta = case
        path = work / "meta.safetensors"
        save_file(seeds[base + ".tensors"], str(path), metadata=meta)
        _check(path)

    with RssWatch() as watch:
        run()
    return watch.growth_mb


def test_mutated_srlab_metadata(seeds, work):
    growth = in_fresh_process(_fuzz_metadata, seeds, work)
    assert growth < RSS_BUDGET_MB, f"loading grew resident memory by {growth:.0f} MB"


# --------------------------------------------------------------------------------------------- pickles
_GLOBALS = [
    ("builtins", "exec"),
    ("builtins", "eval"),
    ("__builtin__", "eval"),
    ("os", "system"),
    ("posix", "system"),
    ("subprocess", "Popen"),
    ("builtins", "getattr"),
    ("builtins", "bytearray"),
    ("builtins", "set"),
    ("builtins", "complex"),
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatTensor"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch.storage", "_load_from_bytes"),
    ("_codecs", "encode"),
]
_IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)
_ARG = st.one_of(
    st.integers(-(2**40), 2**40),
    st.sampled_from([2**31 - 1, 2**33, 10**6, 0, -1]),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.floats(allow_nan=True),
    st.tuples(st.integers(-3, 3), st.integers(-3, 3)),
)


def _body(value) -> bytes:
    """The opcodes that push ``value`` (a protocol-2 pickle without its PROTO and STOP)."""
    return pickle.dumps(value, protocol=2)[2:-1]


@st.composite
def hostile_pickles(draw, marker: str):
    module, name = draw(st.one_of(st.sampled_from(_GLOBALS), st.tuples(_IDENT, _IDENT)))
    if name in ("exec", "eval", "system"):
        args = (f"open({marker!r}, 'w').close()" if name != "system" else f"touch {marker}",)
    else:
        args = tuple(draw(st.lists(_ARG, max_size=3)))
    call = b"c" + module.encode() + b"\n" + name.encode() + b"\n" + _body(args) + b"R"
    obj = b"}" + _body("weight") + call + b"s" if draw(st.booleans()) else call
    return b"\x80\x02" + obj + b"."


def _container(kind: str, pkl: bytes, base: bytes) -> bytes:
    if kind == "raw":
        return pkl
    if kind == "legacy":  # the legacy torch.save layout: magic number, protocol, sys info, then the object
        info = {"protocol_version": 1001, "little_endian": sys.byteorder == "little", "type_sizes": {}}
        head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, info))
        return head + pkl
    out = io.BytesIO()  # a real torch zip with its data.pkl replaced
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            dst.writestr(item, pkl if item.filename.endswith("data.pkl") else src.read(item))
    return out.getvalue()


def test_pickles_with_random_globals(seeds, work):
    marker = work / "pwned"

    @FUZZ
    @given(hostile_pickles(str(marker)), st.sampled_from(["raw", "legacy", "zip"]))
    def run(pkl, kind):
        path = work / "hostile.pth"
        path.write_bytes(_container(kind, pkl, seeds["srvgg.pth"]))
        _check(path)
        assert not marker.exists(), "a pickle's code ran"

    with RssWatch() as watch:
        run()
    assert watch.growth_mb < RSS_BUDGET_MB, f"loading grew resident memory by {watch.growth_mb:.0f} MB"


def test_a_tiny_pickle_cannot_ask_for_gigabytes(work):
    # bytearray is on PyTorch's allowlist: 30 bytes could otherwise claim 2 GiB of zeroed memory
    path = work / "bomb.pth"
    path.write_bytes(b"\x80\x02c__builtin__\nbytearray\nJ" + struct.pack("<i", 2**31 - 1) + b"\x85R.")
    with RssWatch() as watch, pytest.raises(SrlabError, match="2,147,483,647-byte buffer"):
        srlab.load_model(path)
    assert watch.growth_mb < RSS_BUDGET_MB


# --------------------------------------------------------------------------------------------- layouts
_LAYOUTS = [  # the keys each layout's detection and conversion read
    [
        "conv_first.weight",
        "body.0.rdb1.conv1.weight",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_last.weight",
    ],
    [
        "conv_first.weight",
        "RRDB_trunk.0.RDB1.conv1.weight",
        "trunk_conv.weight",
        "upconv1.weight",
        "conv_last.weight",
    ],
    [
        "model.0.weight",
        "model.1.sub.0.RDB1.conv1.0.weight",
        "model.1.sub.1.weight",
        "model.3.weight",
        "model.5.weight",
    ],
    ["body.0.weight", "body.1.weight", "body.2.weight", "body.3.weight", "body.4.weight"],
    ["conv1.weight", "conv2.weight", "conv3.weight"],
    ["block1.weight", "block2.weight", "block3.weight"],
    ["conv0.0.weight", "RRDB_layers.0.block0.conv0.0.weight", "conv3.0.weight"],
    ["block1.0.weight", "basicBlocks.0.block1.0.weight", "block2.0.weight"],
    [
        "conv_1.sk.weight",
        "block_1.c1_r.eval_conv.weight",
        "block_6.c1_r.sk.weight",
        "conv_cat.weight",
        "upsampler.0.weight",
        "no_norm",
    ],
]
_SHAPES = st.one_of(
    st.lists(st.integers(1, 6), min_size=4, max_size=4),  # conv-like
    st.lists(st.integers(0, 6), max_size=4),  # anything, 0-d included
)


@st.composite
def odd_state_dicts(draw):
    """Plain tensor checkpoints with a known layout's keys (some dropped) and arbitrary shapes."""
    keys = draw(st.sampled_from(_LAYOUTS))
    keys = [k for k in keys if draw(st.integers(0, 5))]  # now and then a key is missing
    sd = {
        k: torch.zeros(draw(_SHAPES), dtype=draw(st.sampled_from([torch.float32, torch.int64]))) for k in keys
    }
    return {"params_ema": sd} if draw(st.booleans()) else sd


def test_state_dicts_with_odd_tensors(work):
    @settings(FUZZ, max_examples=120)
    @given(odd_state_dicts(), st.sampled_from([None, 2, 3]))
    def run(sd, scale):
        path = work / "odd.pth"
        torch.save(sd, path)
        try:
            model, desc = srlab.load_model(path, scale=scale)
        except SrlabError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), str(exc)

    with RssWatch() as watch:
        run()
    assert watch.growth_mb < RSS_BUDGET_MB, f"loading grew resident memory by {watch.growth_mb:.0f} MB"


# --------------------------------------------------------------------------------------------- zip entries
def _deflated_copy(src: bytes, dst: Path, replace: dict[str, bytes] | None = None) -> None:
    """The torch zip ``src`` rewritten with every entry deflated (and some entries' bytes replaced)."""
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            for tail, new in (replace or {}).items():
                if info.filename.endswith(tail):
                    data = new
            zout.writestr(info.filename, data)


def test_a_deflated_pickle_is_judged_by_its_unpacked_size(work):
    """A data.pkl of a few hundred kB deflated that unpacks past the scan limit and asks for gigabytes."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    pad = b"X" * (70 << 20)  # unpacks to 70 MB, deflates to ~70 kB; then bytearray(3.3e9)
    pkl = b"\x80\x02X" + struct.pack("<I", len(pad)) + pad + b"0c__builtin__\nbytearray\n"
    pkl += b"\x8a\x05" + (3_300_000_000).to_bytes(5, "little") + b"\x85R."
    path = work / "deflated_pickle.pth"
    _deflated_copy(buf.getvalue(), path, {"data.pkl": pkl})
    del pad, pkl
    assert path.stat().st_size < 1 << 20
    with RssWatch() as watch, pytest.raises(SrlabError, match=r"data.pkl unpacks to 73,400,3\d\d bytes"):
        srlab.load_model(path)
    assert watch.growth_mb < RSS_BUDGET_MB


def test_zip_entries_that_unpack_far_past_the_file_are_refused(work):
    buf = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(8 << 20)}, buf)  # 32 MB of zeros deflate to ~32 kB
    path = work / "deflated_storage.pth"
    _deflated_copy(buf.getvalue(), path)
    del buf
    with RssWatch() as watch, pytest.raises(SrlabError, match="zip entries unpack to 33,55"):
        read_checkpoint(path)
    assert watch.growth_mb < RSS_BUDGET_MB


# --------------------------------------------------------------------------------------------- strides
@pytest.mark.parametrize("shape", [(30000, 30000), (64, 64, 3, 3)])
def test_stride_zero_tensors_are_counted_made_whole(work, shape):
    """An expanded tensor pickles its tiny storage and its zero strides; made contiguous it is huge."""
    sd = {"body.0.weight": torch.zeros(1).expand(*shape), "body.0.bias": torch.zeros(64)}
    path = work / "strided.pth"
    torch.save(sd, path)
    whole = torch.Size(shape).numel() * 4
    if whole < 16 << 20:  # small enough to be a real (tied or broadcast) tensor: still read
        assert read_checkpoint(path)[0]["body.0.weight"].shape == shape
        return
    with pytest.raises(SrlabError, match=r"stride-0 view of 4 bytes of storage\) would need 3,600,000,000"):
        read_checkpoint(path)
    with RssWatch() as watch, pytest.raises(SrlabError) as info:
        srlab.load_model(path)
    assert "\n" not in str(info.value) and "strided.pth" in str(info.value)
    assert watch.growth_mb < RSS_BUDGET_MB


# --------------------------------------------------------------------------------------------- values
def _srvgg():
    torch.manual_seed(0)
    return build_model("srvgg", scale=2, num_feat=4, num_conv=1)[0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_non_finite_weights_are_refused_naming_the_tensor(work, bad, fmt):
    model = _srvgg()
    key = next(k for k in model.state_dict() if k.endswith("weight"))
    with torch.no_grad():
        model.state_dict()[key].view(-1)[3] = bad
    path = work / f"nonfinite.{fmt}"
    if fmt == "safetensors":
        save_model(path, model)
    else:
        torch.save(model.state_dict(), path)
    with pytest.raises(SrlabError) as info:
        srlab.load_model(path)
    msg = str(info.value)
    counts = "1 NaN and 0 infinite" if bad != bad else "0 NaN and 1 infinite"
    assert f"tensor {key} has {counts} values of" in msg and "would output NaN" in msg and "\n" not in msg


def test_non_finite_weights_fail_upscale_with_one_line(work, tmp_path, capsys):
    from PIL import Image

    from srlab.cli import main

    model = _srvgg()
    with torch.no_grad():
        next(iter(model.parameters())).fill_(float("nan"))
    path = save_model(work / "nan_cli.safetensors", model)
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    rc = main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "NaN" in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.int32])
def test_integer_weights_are_refused_not_cast(work, dtype):
    sd = {k: (v * 100).to(dtype) if k.endswith("weight") else v for k, v in _srvgg().state_dict().items()}
    path = work / "int.pth"
    torch.save(sd, path)
    with pytest.raises(SrlabError, match=f"is {str(dtype)[6:]}, not floating point"):
        srlab.load_model(path)


def test_integer_buffers_are_fine(work):
    sd = {"conv.weight": torch.ones(2, 2), "bn.num_batches_tracked": torch.tensor(7)}
    path = work / "buffers.pth"
    torch.save(sd, path)
    assert read_checkpoint(path)[0]["bn.num_batches_tracked"].item() == 7
