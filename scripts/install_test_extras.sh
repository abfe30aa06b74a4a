#!/usr/bin/env bash
# The test extras pip's resolver cannot install with a CPU torch, shared by .ci/run and the README's test
# command, so that both run the same tests. Run it in the environment the tests use, after
# `pip install -e ".[test]"`.
set -euo pipefail
# The [archs] extra without a CUDA build: spandrel requires torchvision, whose wheels pull their own torch,
# so spandrel goes in without dependencies (einops is its one missing pure-Python one); the tests give its
# torchvision import a stand-in (tests/stubs/).
python -m pip install -q --no-deps "spandrel>=0.4" "einops>=0.6"
# Reference implementations for tests/test_perceptual.py (srlab's LPIPS/DISTS must equal theirs) and the
# published LPIPS heads / DISTS weights they ship. Both import torchvision: no deps, the test stubs it.
python -m pip install -q --no-deps "lpips==0.1.4" "DISTS_pytorch==0.1"
# Optional: Debian's chromium, so that the report-HTML test (headless screenshot + DOM check) runs rather
# than skips; chromium-driver: Selenium drives that same browser in tests/test_serve_browser.py (no browser
# download). Never fatal: without them (not root, no apt-get) those tests skip.
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
  && command -v apt-get >/dev/null 2>&1; then
  timeout 900 bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends chromium chromium-driver' >/dev/null 2>&1 \
    || echo "chromium not installed (optional): the report HTML and serve browser tests will skip"
fi
