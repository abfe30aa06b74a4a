"""What a worker does with a job, run in this process (no server): the result is the file `srlab upscale`
writes, under the name it gives; still images report progress per tile and stop between tiles when the job
is taken away."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image as PILImage

from srlab.cli import main
from srlab.serve.jobs import Cancelled, UpscalerCache, run_job

RNG = np.random.default_rng(19)


@pytest.fixture(scope="module")
def cache():
    return UpscalerCache("cpu")


def _job(**params):
    return SimpleNamespace(kind="upscale", params={"model": "bicubic-x2", "media": "image", **params})


@pytest.mark.parametrize(
    ("ext", "mode"),
    [("png", "RGB"), ("jpg", "RGB"), ("webp", "RGBA"), ("tif", "RGB"), ("gif", "P"), ("bmp", "RGBA")],
)
def test_result_is_named_and_written_as_srlab_upscale_does(tmp_path, cache, ext, mode):
    folder, cli = tmp_path / "job", tmp_path / "cli"
    folder.mkdir()
    a = RNG.integers(0, 256, (14, 18, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    im = PILImage.fromarray(a)
    (im.convert("P") if mode == "P" else im).save(folder / f"input.{ext}")
    res = run_job(_job(input=f"input.{ext}"), folder, cache, lambda f: None, max_pixels=10**6)
    assert main(["upscale", str(folder / f"input.{ext}"), "-o", str(cli), "-m", "bicubic-x2", "-q"]) == 0
    (made,) = cli.iterdir()
    assert res["file"] == made.name  # input_x2.png for a GIF still, .webp keeping its alpha, ...
    assert (folder / res["file"]).read_bytes() == made.read_bytes()


def test_tiles_report_progress_and_a_taken_job_stops_between_them(tmp_path, cache):
    folder = tmp_path / "job"
    folder.mkdir()
    PILImage.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / "input.png")
    seen: list[float] = []
    res = run_job(_job(input="input.png", tile=8), folder, cache, seen.append, max_pixels=10**6)
    tiles = [f for f in seen if 0.1 < f <= 0.95]
    assert len(tiles) >= 10 and tiles == sorted(tiles) and tiles[-1] == pytest.approx(0.95)
    assert (folder / res["file"]).is_file()

    (folder / res["file"]).unlink()
    seen.clear()

    def report(fraction: float) -> None:  # the store says the job is gone once a third is done
        seen.append(fraction)
        if fraction > 0.33:
            raise Cancelled("job")

    with pytest.raises(Cancelled):
        run_job(_job(input="input.png", tile=8), folder, cache, report, max_pixels=10**6)
    assert 0.33 < seen[-1] < 0.5  # stopped at the first tile report past the third, not at the end
    assert sorted(p.name for p in folder.iterdir()) == ["input.png"]  # no result, no temporary file
    assert cache.get("bicubic-x2", 8, "auto").progress is False  # it does not report into the next job
