"""The playground page in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium)
against `srlab serve` started as a process: drop an image, pick a model, wait for the result, move the
slider, zoom the synchronised panels, check the output's size, take a screenshot."""

from __future__ import annotations

import base64
import io
import shutil
import time

import numpy as np
import pytest
from PIL import Image as PILImage

pytest.importorskip("starlette")
selenium = pytest.importorskip("selenium", reason="selenium not installed (pip install 'srlab[test]')")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from srlab.serve.process import ServerProcess  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="chromium and chromedriver not installed (apt-get install chromium chromium-driver)",
)

# a file dropped the way a desktop drag does: a DataTransfer holding a File, sent as a drop event
DROP_JS = """
const [b64, name, target] = arguments;
const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const dt = new DataTransfer();
dt.items.add(new File([bytes], name, { type: "image/png" }));
const el = document.getElementById(target);
for (const t of ["dragenter", "dragover", "drop"]) {
  el.dispatchEvent(new DragEvent(t, { dataTransfer: dt, bubbles: true, cancelable: true }));
}
"""


@pytest.fixture()
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield d
    d.quit()


def test_page_end_to_end(browser, tmp_path):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1).astype(np.uint8) + rng.integers(
        0, 20, (48, 64, 3), dtype=np.uint8
    )
    buf = io.BytesIO()
    PILImage.fromarray(img).save(buf, format="PNG")
    with ServerProcess(tmp_path / "data", "--workers", "1", env={"OMP_NUM_THREADS": "1"}) as srv:
        d = browser
        d.get(srv.url)
        wait = WebDriverWait(d, 60)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) > 3)
        submit = d.find_element(By.ID, "submit")
        assert not submit.is_enabled()  # nothing dropped yet
        d.execute_script(DROP_JS, base64.b64encode(buf.getvalue()).decode(), "gradient.png", "drop")
        assert "gradient.png" in d.find_element(By.ID, "drop-text").text
        Select(d.find_element(By.ID, "model")).select_by_value("srcnn-x2")
        assert "fast" in d.find_element(By.ID, "model-hint").text  # the speed hint is shown
        submit.click()
        WebDriverWait(d, 180).until(lambda d: "done" in d.find_element(By.ID, "status-text").text)
        wait.until(
            lambda d: d.execute_script(
                "const i = document.getElementById('ba-after'); return i.complete && i.naturalWidth > 0"
            )
        )
        size = d.execute_script(
            "const i = document.getElementById('ba-after'); return [i.naturalWidth, i.naturalHeight]"
        )
        assert size == [128, 96]  # x2 of 64x48

        slider = d.find_element(By.ID, "slider")
        slider.send_keys(Keys.ARROW_RIGHT * 10)  # keyboard-usable
        assert slider.get_attribute("value") == "60"
        clip = d.execute_script("return document.getElementById('ba-after-wrap').style.clipPath")
        assert clip.replace("px", "") == "inset(0 0 0 60%)"

        panels = d.find_element(By.ID, "panels")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#panels img")) == 2)  # input + output
        before = d.execute_script(
            "return [...document.querySelectorAll('#panels img')].map(i => i.style.transform)"
        )
        panels.send_keys("+")
        panels.send_keys(Keys.ARROW_RIGHT)
        after = d.execute_script(
            "return [...document.querySelectorAll('#panels img')].map(i => i.style.transform)"
        )
        assert after != before and len(set(after)) == 1  # zoomed and panned, every panel alike

        recent = d.find_element(By.ID, "recent").text
        assert "gradient" in recent and "srcnn-x2" in recent and "done" in recent
        time.sleep(0.3)
        shot = PILImage.open(io.BytesIO(d.get_screenshot_as_png())).convert("RGB")
        shot.save(tmp_path / "serve.png")
        assert shot.size[0] >= 1000 and np.asarray(shot).std() > 10  # a rendered page, not a blank one
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
