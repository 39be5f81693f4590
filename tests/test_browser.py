"""The results pages in a real browser, offline: ``dvc plots show``/``diff`` and the report stage.

A tiny DVC project is built from this repository's dvc.yaml, .dvc/config and
vendor/vega, with synthetic pipeline outputs at two git revisions (no
training), so the real DVC commands and the real stage script make the pages.
Each page is opened from ``file://`` in headless Debian Chromium
(tests/chromium_cdp.py) and must:

- render every plot: each DVC Vega plot has a ``canvas``/``svg`` with marks in
  it, and every image decodes (and, where the browser lets us read its pixels,
  is not blank);
- log no console error and throw no exception;
- request nothing but ``file:``/``data:``/``blob:`` URLs.

The browser's proxy is a local sink, so nothing can leave the machine even if
a page tries; a control test shows that DVC's stock CDN template is caught.
Screenshots go to test-artifacts/. Without Chromium (``.ci/install-browser``
installs it) the tests skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from chromium_cdp import Chromium, Page, find_chromium
from pipeline_outputs import write_outputs

from heartbeat.core.registry import MODEL_SPECS

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = find_chromium()
LOCAL_SCHEMES = {"file", "data", "blob", "about"}
# Chromium's own services that it contacts from a fresh profile even with background networking off
# (component updater, account check). They go to the sink like everything else; a page's own requests
# are checked separately, by URL, so a page fetching e.g. fonts.googleapis.com still fails.
BROWSER_SERVICE_SUFFIXES = (".google.com", ".googleapis.com", ".gstatic.com", ".gvt1.com")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium browser: run .ci/install-browser (apt-get install chromium) or set HEARTBEAT_CHROMIUM",
)

# Every plot on the page, as JSON: DVC's Vega plots (the divs whose ids are passed in as `ids`; vega-embed
# replaces their inline script) with the kind of marks element vega-embed made and how much is drawn in
# it, then every <img>.
RENDER_STATE = r"""
((ids) => {
  const ink = (canvas) => {
    try {
      const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
      }
      return n;
    } catch (e) { return null; }  // a file:// image taints the canvas: its pixels cannot be read
  };
  // Whether an item of a data mark can be seen: some geometry, painted, and not faded out (Vega keeps
  // transparent hover areas and zero-opacity rules among the marks).
  const painted = (colour, opacity) =>
    colour && colour !== 'none' && colour !== 'transparent' && !/rgba\(.*,\s*0\)$/.test(colour) && +opacity > 0;
  const visible = (el) => {
    const box = el.getBBox ? el.getBBox() : {width: 1, height: 1};
    if (box.width === 0 && box.height === 0) return false;
    for (let e = el; e && e.tagName.toLowerCase() !== 'svg'; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden' || +cs.opacity === 0) return false;
    }
    const cs = getComputedStyle(el);
    return painted(cs.fill, cs.fillOpacity) || painted(cs.stroke, cs.strokeOpacity);
  };
  const plots = ids.map(id => {
    const div = document.getElementById(id);
    const m = div && div.querySelector('canvas.marks, svg.marks');
    // drawn: anything drawn at all (axes count); data: items of the data marks (Vega's role "mark").
    let drawn = 0, data = null;
    if (m && m.tagName.toLowerCase() === 'canvas') drawn = ink(m);
    else if (m) {
      drawn = m.querySelectorAll('path, rect, line, text, circle, image').length;
      data = [...m.querySelectorAll('g.role-mark > *')].filter(visible).length;
    }
    return {id: id, kind: m ? m.tagName.toLowerCase() : null, drawn: drawn, data: data};
  });
  const images = [...document.images].map(img => {
    let drawn = null;
    if (img.complete && img.naturalWidth > 0) {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      c.getContext('2d').drawImage(img, 0, 0);
      drawn = ink(c);
    }
    return {src: img.getAttribute('src').slice(0, 60), width: img.naturalWidth, drawn: drawn};
  });
  return {plots: plots, images: images, ready: plots.every(p => p.kind !== null)};
})"""


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "dvc", *args], cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project with this repository's config and template: outputs committed as ``v1``, then changed."""
    root = tmp_path_factory.mktemp("project")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, root / name)
    (root / ".dvc").mkdir()
    shutil.copy(ROOT / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copytree(ROOT / ".dvc" / "plots", root / ".dvc" / "plots")
    shutil.copytree(ROOT / "vendor" / "vega", root / "vendor" / "vega")
    (root / "stages").mkdir()
    shutil.copy(ROOT / "stages" / "report.py", root / "stages" / "report.py")
    write_outputs(root, seed=0, epochs=4)
    _run(["git", "init", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "v1"], root)
    _run(["git", "tag", "v1"], root)
    params = root / "params.yaml"
    bump = re.sub(r"(?m)^(  epochs: )(\d+)", lambda m: f"{m[1]}{int(m[2]) + 1}", params.read_text(), count=1)
    params.write_text(bump)
    write_outputs(root, seed=1, epochs=6)
    return root


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    assert CHROMIUM is not None
    tmp = tmp_path_factory.mktemp("chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    chromium = Chromium(CHROMIUM, tmp / "profile", ARTIFACTS / "chromium.log")
    try:
        yield chromium
    finally:
        chromium.close()


def _browser_service(request_line: str) -> bool:
    """Whether a request line seen by the sink (``CONNECT host:443 ...``, ``GET http://host/...``) is Chromium's own."""
    parts = request_line.split()
    if len(parts) < 2:
        return False
    target = parts[1]
    host = urlsplit(target).hostname if "://" in target else target.rsplit(":", 1)[0]
    return bool(host) and f".{host}".endswith(BROWSER_SERVICE_SUFFIXES)


def _vega_ids(page_file: Path) -> list[str]:
    """Ids of the divs in which DVC's page calls ``vegaEmbed('#id', spec)``."""
    return re.findall(r"vegaEmbed\('#([^']+)'", page_file.read_text(encoding="utf-8"))


def _img_count(page_file: Path) -> int:
    """Images in the page body (the inlined Vega code in <head> mentions ``<img`` too)."""
    return page_file.read_text(encoding="utf-8").rsplit("</head>", 1)[-1].count("<img ")


def _open(browser: Chromium, page_file: Path, artifact: str, timeout: float = 30) -> tuple[Page, dict]:
    """Open ``page_file``, wait until every Vega plot has rendered (or ``timeout``), and screenshot it."""
    assert page_file.is_file(), f"{page_file} was not written"
    state_js = f"({RENDER_STATE.strip()})({json.dumps(_vega_ids(page_file))})"
    sink_before = len(browser.sink.requests)
    page = browser.open(page_file.as_uri())
    state = page.wait_for(f"(() => {{ const s = {state_js}; return s.ready ? s : null; }})()", timeout)
    state = state or page.evaluate(state_js)
    page.screenshot(ARTIFACTS / f"{artifact}.png")
    state["sink"] = [r for r in browser.sink.requests[sink_before:] if not _browser_service(r)]
    return page, state


def _assert_offline_and_clean(page: Page, state: dict, n_plots: int, n_images: int, readable: bool) -> None:
    log = page.log()
    remote = [u for u in log.requests if urlsplit(u).scheme not in LOCAL_SCHEMES]
    assert remote == [], f"the page requested non-local URLs: {remote}"
    assert state["sink"] == [], f"connections that would have left the machine: {state['sink']}"
    assert log.errors == [], f"console errors: {log.errors}"
    assert len(state["plots"]) == n_plots, state["plots"]
    ids = {p["id"] for p in state["plots"]}
    for plot in state["plots"]:
        assert plot["kind"] in ("canvas", "svg"), f"plot {plot['id']} did not render: {plot}"
        assert plot["drawn"], f"plot {plot['id']} rendered empty: {plot}"
        if plot["data"] == 0 and f"dvc_yaml__{plot['id']}" in ids:
            warnings.warn(
                f"dvc plots: {plot['id']} shows no data. The file is declared both under a stage's `plots:` "
                "and in the top-level `plots:` of dvc.yaml, so DVC draws it twice, the stage's copy with its "
                "default template; declare it under the stage's `outs:` instead.",
                stacklevel=1,
            )
            continue
        assert plot["data"] is None or plot["data"] > 0, f"plot {plot['id']} shows no data: {plot}"
    assert len(state["images"]) == n_images, state["images"]
    for img in state["images"]:
        assert img["width"] > 0, f"image did not load: {img}"
        if readable:
            assert img["drawn"], f"image is blank: {img}"


def test_plots_show_renders_offline(project: Path, browser: Chromium) -> None:
    _dvc("plots", "show", "-o", "dvc_plots", cwd=project)
    page_file = project / "dvc_plots" / "index.html"
    text = page_file.read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net" not in text and "<script src" not in text
    page, state = _open(browser, page_file, "dvc-plots-show")
    _assert_offline_and_clean(page, state, len(_vega_ids(page_file)), _img_count(page_file), readable=False)
    assert len(_vega_ids(page_file)) >= 6 and _img_count(page_file) >= 8  # history ×2, confusion ×4; 8 PNGs
    # DVC's own templates make Vega warn ("Infinite extent ...") with any Vega version; a version
    # mismatch between DVC's specs and the vendored Vega-Lite must not be among the warnings.
    mismatch = [w for w in page.log().warnings if "current version" in w]
    assert mismatch == [], mismatch


def test_plots_diff_renders_offline(project: Path, browser: Chromium) -> None:
    _dvc("plots", "diff", "v1", "-o", "dvc_plots_diff", cwd=project)
    page_file = project / "dvc_plots_diff" / "index.html"
    page, state = _open(browser, page_file, "dvc-plots-diff")
    _assert_offline_and_clean(page, state, len(_vega_ids(page_file)), _img_count(page_file), readable=False)
    assert _img_count(page_file) >= 16  # each of the 8 PNGs at both revisions


def test_report_renders_offline(project: Path, browser: Chromium) -> None:
    _run([sys.executable, "stages/report.py"], project)
    page, state = _open(browser, project / "report" / "index.html", "report")
    _assert_offline_and_clean(page, state, 0, 2 * len(MODEL_SPECS), readable=True)
    cells = page.evaluate("[...document.querySelectorAll('table')[1].querySelectorAll('tbody tr')].length")
    assert cells == len(MODEL_SPECS)


def test_compare_report_renders_offline(project: Path, browser: Chromium) -> None:
    _run([sys.executable, "stages/report.py", "--compare", "v1"], project)
    page, state = _open(browser, project / "report" / "compare" / "index.html", "report-compare")
    _assert_offline_and_clean(page, state, 0, 4 * len(MODEL_SPECS), readable=True)
    text = page.evaluate("document.body.innerText")
    assert "params.yaml: train_mlp.epochs" in text


def test_stock_cdn_page_is_caught(project: Path, browser: Chromium, tmp_path: Path) -> None:
    """Control: DVC's own template (CDN scripts) fails these checks, so a pass above means something."""
    stock = tmp_path / "stock.html"
    stock.write_text("<!DOCTYPE html><html><head>{scripts}</head><body>{plot_divs}</body></html>")
    _dvc("plots", "show", "-o", "dvc_plots_stock", "--html-template", str(stock), cwd=project)
    page_file = project / "dvc_plots_stock" / "index.html"
    page, state = _open(browser, page_file, "control-stock-cdn", timeout=3)
    log = page.log()
    assert any("cdn.jsdelivr.net" in u for u in log.requests), log.requests
    assert log.errors, "the blocked CDN scripts should have logged errors"
    assert not any(p["kind"] for p in state["plots"]), "nothing can render without the CDN"
    assert any("cdn.jsdelivr.net" in r for r in state["sink"]), "the sink should have caught the CDN"
