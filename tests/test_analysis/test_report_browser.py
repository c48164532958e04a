"""report.html in a real browser (headless Chromium): the page renders (screenshot not blank) and every embedded
figure loads (naturalWidth > 0). Skips when no Chromium is installed (CI installs only Python packages)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from analysis import synthetic
from collbench import cli

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome-headless-shell")
BROWSER = next((b for b in map(shutil.which, BROWSERS) if b), None)
#: appended to a copy of the page: after load, record every image's natural size on <body>
PROBE = ("<script>window.addEventListener('load',()=>{document.body.setAttribute('data-imgs',JSON.stringify("
         "Array.from(document.images).map(i=>[i.complete,i.naturalWidth,i.naturalHeight])));});</script>")  # fmt: skip


def _chromium(*args: str) -> subprocess.CompletedProcess:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
           "--virtual-time-budget=5000", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium binary (apt-get install chromium) to render report.html")
@pytest.mark.timeout(120)
def test_report_renders_in_a_browser(tmp_path: Path, capsys) -> None:
    hw = synthetic.Hardware(alpha_us=30.0, bw_gbps=1.5, gamma_gbps=2.0)
    synthetic.write_run(tmp_path / "runs", hw, cases=(("all_reduce", "ring"), ("all_reduce", "builtin")),
                        world_size=2, sizes=tuple(1 << k for k in range(10, 22, 3)))  # fmt: skip
    assert cli.main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--boot", "5",
                     "--link-gbps", "5"]) == 0  # fmt: skip
    capsys.readouterr()
    page = (tmp_path / "rep" / "report.html").read_text()
    n_img = page.count("<img ")
    assert n_img >= 4
    probe = tmp_path / "rep" / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = _chromium("--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-1000:]
    found = re.search(r'data-imgs="([^"]*)"', dom.stdout)
    assert found, "the page's load event did not run"
    imgs = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(imgs) == n_img
    assert all(done and w >= 1200 and h >= 800 for done, w, h in imgs), imgs  # every figure decoded, full size
    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1280,1600", (tmp_path / "rep" / "report.html").as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-1000:]
    rgb = mpimg.imread(shot)[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05 and len(np.unique((rgb[::7] * 255).astype(np.uint8), axis=0)) > 20, "blank screenshot"
