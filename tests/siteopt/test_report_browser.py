"""The report in a real browser: headless Chromium lays it out and decodes every image.

Slow and needs a Chromium binary: ``make test-browser`` installs Debian's ``chromium`` when
none is on PATH and runs these tests. ``render_in_chromium`` is reusable on any
``report.html``, e.g. one written by ``siteopt solve``.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from siteopt.output.report import SECTIONS, write_report

from .test_report import PNG_SIGNATURE, sample_report_data

TIMEOUT_S = 60
WINDOW = (1280, 4000)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")

# Injected by the test only (the product page carries no script): on load, list every
# section with its heading and every image with its decoded size into <pre id="probe">.
PROBE = """<script>
window.addEventListener("load", function () {
  var out = [];
  document.querySelectorAll("section").forEach(function (s) {
    var h = s.querySelector("h2");
    out.push({id: s.id, h2: h ? h.textContent : null});
  });
  document.querySelectorAll("img").forEach(function (im) {
    out.push({file: im.getAttribute("data-file"), naturalWidth: im.naturalWidth,
              naturalHeight: im.naturalHeight, complete: im.complete});
  });
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def find_chromium() -> str | None:
    """The first Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


def _run_browser(args: list[str], workdir: Path) -> str:
    """Run the browser headless in its own process group; kill that group on timeout."""
    browser = find_chromium()
    assert browser is not None
    cmd = [
        browser,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={workdir / 'profile'}",
        "--virtual-time-budget=10000",
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{browser} did not finish within {TIMEOUT_S} s: {' '.join(args)}")
    if proc.returncode != 0:
        pytest.fail(f"{browser} exited {proc.returncode}: {err[-2000:]}")
    return out


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height [px] from a PNG's IHDR chunk."""
    assert png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def render_in_chromium(html_path: Path) -> dict[str, Any]:
    """Load a report in headless Chromium; what the browser saw and a screenshot.

    A copy of the page gets a probe script before ``</body>``; the original is untouched.

    Returns
    -------
    dict
        ``sections``: ``[{"id", "h2"}]`` in page order; ``images``: ``[{"file",
        "naturalWidth", "naturalHeight", "complete"}]``; ``screenshot_png``: bytes of a
        ``WINDOW``-sized screenshot of the unmodified page.
    """
    with tempfile.TemporaryDirectory(prefix="report-browser-") as tmp:
        work = Path(tmp)
        page = html_path.read_text(encoding="utf-8")
        assert page.count("</body>") == 1, "the page needs exactly one </body>"
        probed = work / "probed.html"
        probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = _run_browser(["--dump-dom", probed.as_uri()], work)
        m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
        assert m, f"no probe in the dumped DOM (load never fired?): {dom[-500:]!r}"
        probe = json.loads(html.unescape(m.group(1)))
        shot = work / "screenshot.png"
        width, height = WINDOW
        _run_browser(
            [f"--screenshot={shot}", f"--window-size={width},{height}", html_path.as_uri()], work
        )
        assert shot.exists(), "the browser wrote no screenshot"
        return {
            "sections": [p for p in probe if "id" in p],
            "images": [p for p in probe if "file" in p],
            "screenshot_png": shot.read_bytes(),
        }


TEXAS = Path(__file__).resolve().parents[2] / "scenarios" / "texas.yaml"


@pytest.fixture(scope="module", params=["synthetic", "texas-solve"])
def rendered(request, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A report from sample data, and one that ``siteopt solve --frontier`` wrote."""
    if find_chromium() is None:
        pytest.skip(
            f"no Chromium on PATH (looked for {', '.join(BROWSERS)}); "
            "`make test-browser` installs Debian's chromium and runs these tests"
        )
    out = tmp_path_factory.mktemp("report")
    if request.param == "synthetic":
        write_report(sample_report_data(), out)
    else:
        from click.testing import CliRunner

        from siteopt.cli.group import main

        args = ["solve", str(TEXAS), "--scenarios", "500", "--frontier", "3", "--out", str(out)]
        result = CliRunner().invoke(main, [*args, "--quiet", "--time-limit", "60"])
        assert result.exit_code == 0, result.output
    return out, render_in_chromium(out / "report.html")


@pytest.mark.slow
def test_every_section_renders_with_its_heading(rendered: tuple[Path, dict[str, Any]]) -> None:
    _, seen = rendered
    by_id = {s["id"]: s["h2"] for s in seen["sections"]}
    assert [s["id"] for s in seen["sections"]] == list(SECTIONS)
    for sid in SECTIONS:
        assert by_id[sid] and by_id[sid].strip(), f"section {sid} has no heading"


@pytest.mark.slow
def test_every_image_decodes(rendered: tuple[Path, dict[str, Any]]) -> None:
    out, seen = rendered
    files = sorted(p.name for p in out.glob("*.png"))
    assert sorted(im["file"] for im in seen["images"]) == files
    for im in seen["images"]:
        assert im["complete"], im
        assert im["naturalWidth"] > 0 and im["naturalHeight"] > 0, im
        assert (im["naturalWidth"], im["naturalHeight"]) == png_size(
            (out / im["file"]).read_bytes()
        )


@pytest.mark.slow
def test_screenshot_is_not_blank(rendered: tuple[Path, dict[str, Any]]) -> None:
    png = rendered[1]["screenshot_png"]
    width, height = png_size(png)
    assert width > 0 and height > 0 and width * height >= 1000 * 1000
    assert len(png) > 20_000, "a page of text and plots compresses to more than 20 kB"
    pixels = np.asarray(imread(io.BytesIO(png), format="png"))[..., :3]
    ink = np.any(pixels < 0.9, axis=-1).mean()
    assert ink > 0.02, f"only {ink:.2%} of the screenshot is not white"
