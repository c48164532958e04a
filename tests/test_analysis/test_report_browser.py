"""report.html in a real browser (headless Chromium): the page renders (screenshot not blank), every embedded
figure loads (naturalWidth > 0), every interactive (Bokeh) figure draws, and the committed CPU reference run's page
opens with its headline cards, at most 25 table rows before the first figure and no note line more than 3 times.
Skips when no Chromium is installed (apt-get install chromium; CI installs only Python packages)."""

from __future__ import annotations

import collections
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
RESULTS = Path(__file__).resolve().parents[2] / "results"
#: appended to a copy of the page: after load (and Bokeh's drawing), record on <body> every image's natural size,
#: every interactive figure's drawn height, the body's first elements, the table rows before the first figure
#: and the text of every list item
PROBE = """<script>window.addEventListener('load',()=>{setTimeout(()=>{
const all=Array.from(document.querySelectorAll('tr,figure'));const f=all.findIndex(e=>e.tagName==='FIGURE');
document.body.setAttribute('data-probe',JSON.stringify({
 imgs:Array.from(document.images).map(i=>[i.complete,i.naturalWidth,i.naturalHeight]),
 bokeh:Array.from(document.querySelectorAll('[data-root-id]')).map(r=>{const c=r.firstElementChild;
  return [c?c.className:'',!!(c&&c.shadowRoot&&c.shadowRoot.querySelector('.bk-Canvas')),
          c?c.getBoundingClientRect().height:0];}),
 first:Array.from(document.body.children).slice(0,3).map(e=>e.tagName+'.'+e.className+':'+e.textContent.slice(0,40)),
 rows_before_figure:f<0?-1:all.slice(0,f).filter(e=>e.tagName==='TR').length,
 notes:Array.from(document.querySelectorAll('li')).map(e=>e.textContent)}));},1000);});</script>"""
#: a note's leading subject: a run, a curve ('all_reduce p=2 ring'), a case ('all_reduce/ring 2048 B in-place')
SUBJECT = re.compile(r"[\w/.=\- ]{1,80}: ")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
           "--virtual-time-budget=10000", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _probe(page_path: Path) -> dict:
    """What the page shows once loaded in Chromium (PROBE)."""
    probe = page_path.with_name("probe.html")
    probe.write_text(page_path.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium("--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-1000:]
    found = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert found, "the page's load event did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))  # fmt: skip


def _screenshot(page_path: Path, shot: Path, size: str = "1280,1600") -> None:
    res = _chromium(f"--screenshot={shot}", f"--window-size={size}", page_path.as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-1000:]
    rgb = mpimg.imread(shot)[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05 and len(np.unique((rgb[::7] * 255).astype(np.uint8), axis=0)) > 20, "blank screenshot"


def note_key(text: str) -> str:
    """What a note says, whatever it is about: its folded subject list, leading subjects and numbers dropped
    ('all_gather p=2 ring: busbw still rising at the largest size (16 MiB): ...' -> 'busbw still rising ...')."""
    text = re.sub(r" \(\d+ x: .*\)$", "", text)
    while m := SUBJECT.match(text):
        text = text[m.end() :]
    return re.sub(r"\d+(?:\.\d+)?", "#", text)


def _check_figures(seen: dict, n_img: int, n_bokeh: int) -> None:
    assert len(seen["imgs"]) == n_img
    assert all(done and w >= 1200 and h >= 800 for done, w, h in seen["imgs"]), seen["imgs"]  # decoded, full size
    assert len(seen["bokeh"]) == n_bokeh
    assert all(cls == "bk-Figure" and drawn and h >= 300 for cls, drawn, h in seen["bokeh"]), seen["bokeh"]


@pytest.mark.skipif(BROWSER is None, reason="no Chromium binary (apt-get install chromium) to render report.html")
@pytest.mark.timeout(180)
def test_report_renders_in_a_browser(tmp_path: Path, capsys) -> None:
    hw = synthetic.Hardware(alpha_us=30.0, bw_gbps=1.5, gamma_gbps=2.0)
    synthetic.write_run(tmp_path / "runs", hw, cases=(("all_reduce", "ring"), ("all_reduce", "builtin")),
                        world_size=2, sizes=tuple(1 << k for k in range(10, 22, 3)))  # fmt: skip
    assert cli.main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--boot", "5",
                     "--link-gbps", "5"]) == 0  # fmt: skip
    capsys.readouterr()
    page = tmp_path / "rep" / "report.html"
    text = page.read_text()
    n_img, n_bokeh = text.count("<img "), text.count("data-root-id=")
    assert n_img >= 4 and n_bokeh == 1
    _check_figures(_probe(page), n_img, n_bokeh)
    _screenshot(page, tmp_path / "shot.png")


@pytest.mark.skipif(BROWSER is None, reason="no Chromium binary (apt-get install chromium) to render report.html")
@pytest.mark.timeout(600)
def test_cpu_reference_report_opens_with_the_answer(tmp_path: Path, capsys) -> None:
    """results/cpu-2core (3 runs, 6 collectives, 36 verdict rows, 29 'busbw still rising' notes): the page opens
    with one headline card per machine; before the first figure at most 25 table rows (79 before the headline
    cards); no note says the same thing more than 3 times (29 before folding)."""
    runs = sorted(p for p in (RESULTS / "cpu-2core").iterdir() if (p / "run.json").exists())
    assert len(runs) == 3
    assert cli.main(["report", *map(str, runs), "--out", str(tmp_path / "rep"), "--boot", "3", "--grad-bytes", "1G",
                     "--compute-ms", "300", "--overlap", "0.5"]) == 0  # fmt: skip
    capsys.readouterr()
    page = tmp_path / "rep" / "report.html"
    text = page.read_text()
    seen = _probe(page)
    first = seen["first"]
    assert first[0].startswith("H1.") and first[1].startswith("H2.:At a glance") and first[2].startswith("DIV.cards")
    assert text.count('<section class="card">') == 3
    assert 0 <= seen["rows_before_figure"] <= 25, seen["rows_before_figure"]
    repeats = collections.Counter(note_key(n) for n in seen["notes"])
    assert max(repeats.values()) <= 3, repeats.most_common(3)
    assert any("busbw still rising" in n and "(29 x:" in n for n in seen["notes"])  # folded, with its count
    _check_figures(seen, text.count("<img "), text.count("data-root-id="))
    _screenshot(page, tmp_path / "shot.png", "1400,2400")


def test_note_key_finds_the_repeats_of_the_unfolded_page() -> None:
    """The measure the browser test applies: the old page's 'busbw still rising' lines on different curves, and a
    run's interference warnings on different cases, are each one note repeated."""
    old = ["all_gather p=2 builtin: busbw still rising at the largest size (16 MiB): larger sizes may come closer",
           "reduce p=3 tree: busbw still rising at the largest size (4.0 MiB): larger sizes may come closer",
           "20261126T171537Z-vm-14de11: all_gather/bruck 16384 B out-of-place: interference: 14 % of samples",
           "20261126T171819Z-vm-841a52: reduce/ring 1024 B in-place: interference: 7 % of samples",
           "No roof: 2 ranks inside one node, CPU processes: gloo moves data"]  # fmt: skip
    keys = [note_key(n) for n in old]
    assert keys[0] == keys[1] and keys[2] == keys[3] and len(set(keys)) == 3
