"""The rendered report in a real browser: headless Chromium driven by Playwright.

Needs Debian's chromium (``apt-get install chromium``; ``.ci/run`` installs it) and the
``playwright`` Python package (in the test extras). Skipped, with the reason, when either is
missing on a developer's machine.
"""

import re
import shutil

import pytest
from click.testing import CliRunner
from report_cases import CASES

from gradscope.cli import main
from gradscope.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory, request):
    tiny = request.getfixturevalue("tiny_npz_module")
    out = tmp_path_factory.mktemp("browser") / "grid"
    r = CliRunner().invoke(main, ["analyze", "--act", "sigmoid", "--act", "relu", "--init", "normal", "--init", "he",
                                  "--hidden", "16,8", "--epochs", "2", "--batch-size", "50", "-q",
                                  "--data", str(tiny), "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return out / "report.html"


@pytest.fixture(scope="module")
def tiny_npz_module(tmp_path_factory):
    import numpy as np

    from conftest import make_digits

    x_tr, y_tr = make_digits(200, seed=1)
    x_te, y_te = make_digits(100, seed=2)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return path


def test_report_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    errors, failed = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight, alt: i.alt}))")
            rows = page.eval_on_selector_all("#summary-table tbody tr", "rs => rs.map(r => r.cells[0].innerText)")
            title = page.title()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert not failed, f"the page asked for something it does not contain: {failed}"
    assert len(images) >= 6 and all(i["w"] > 0 and i["h"] > 0 for i in images), images
    assert all(i["alt"] for i in images)
    assert sorted(r.split("\n")[0] for r in rows) == ["relu-he", "relu-normal", "sigmoid-he", "sigmoid-normal"]
    assert title.startswith("gradscope")
    assert shot.stat().st_size > 50_000


def test_report_html_structure(report):
    html = report.read_text()
    assert html.count('class="run-row"') == 4
    assert "http://" not in html and "https://" not in html  # nothing to fetch: opens offline
    for section in ("summary", "diagnosis", "gradient-flow", "layer-bars", "layer-bars-relative",
                    "weights", "updates", "activations", "curves", "provenance"):
        assert f'id="{section}"' in html, section
    assert report.stat().st_size < 3_000_000


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize("case", ["cnn-mlp", "explosion", "nan-step-0", "recurrent", "zeros"])
def test_hard_case_reports_open_in_chromium(case, browser, tmp_path):
    """Each hard case's report in a real browser (the 24-run sweep and the interrupted run are
    laid out by tests/test_report_layout.py; here they would only add time)."""
    runs = CASES[case]()
    path = write_report(runs, tmp_path / f"{case}.html", title=f"gradscope {case}")
    errors = []
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri(), wait_until="load")
        images = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight, shown: i.clientWidth}))")
        rows = page.eval_on_selector_all("#summary-table tbody tr", "rs => rs.length")
        evidence = page.eval_on_selector_all("table.evidence td", "cs => cs.map(c => c.innerText)")
        wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    finally:
        page.close()
    assert not errors, errors
    assert rows == len(runs)
    assert len(images) >= 6 and all(i["w"] > 0 and i["h"] > 0 and i["shown"] > 0 for i in images), images
    assert not wide, "the page scrolls sideways"
    for text in evidence:  # numbers as people read them: at most 3 significant digits, no raw Python
        assert "{" not in text and "[" not in text, text
        for number in re.findall(r"\d+\.\d+", text):
            assert len(number.replace(".", "").lstrip("0")) <= 3, text


@pytest.mark.parametrize("width", [900])
def test_the_report_reads_without_sideways_scrolling_in_a_notebook_column(report, browser, width):
    """A notebook column is ~900 px: the summary keeps every number and nothing scrolls sideways."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(report.as_uri(), wait_until="load")
        page_wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
        table_wide = page.evaluate("Math.max(...[...document.querySelectorAll('.wide')].map(e => e.scrollWidth - e.clientWidth))")
        cells = page.eval_on_selector_all("#summary-table tbody tr", "rs => rs.map(r => r.innerText)")
    finally:
        page.close()
    assert not page_wide and table_wide <= 1, (page_wide, table_wide)
    assert all(re.search(r"\d\.\d+ → \d", row) for row in cells), cells  # the ratios are all there


HOST = """<!DOCTYPE html><html><head><style>
body {{ font-family: Georgia, serif; color: rgb(10, 20, 30); margin: 7px; line-height: 1.9; }}
h1 {{ color: rgb(200, 0, 0); font-size: 40px; }} h2 {{ font-size: 11px; }}
table {{ border: 3px solid rgb(0, 200, 0); width: 300px; }} td {{ padding: 9px; }} p {{ margin: 21px; }}
</style></head><body>
<h1 id="host-h1">A notebook</h1><p id="host-p">Some text of the page.</p>
<table id="host-table"><tr><td id="host-td">a cell</td></tr></table>
{report}
<h2 id="host-h2">After the report</h2></body></html>"""
HOST_STYLES = """() => ['body', '#host-h1', '#host-p', '#host-table', '#host-td', '#host-h2'].map(sel => {
  const s = getComputedStyle(document.querySelector(sel));
  return [sel, s.color, s.fontFamily, s.fontSize, s.margin, s.padding, s.lineHeight, s.border, s.width].join(' | ');
})"""


def test_the_inline_report_changes_nothing_of_the_page_around_it(report, browser, tmp_path):
    """``gradscope.show``'s block inside a page of other content: the page's own styles are untouched."""
    from gradscope.report.notebook import report_of

    inline = report_of(report.parent).html
    seen = {}
    for name, body in (("alone", ""), ("with the report", inline)):
        path = tmp_path / f"{name.replace(' ', '-')}.html"
        path.write_text(HOST.format(report=body), encoding="utf-8")
        page = browser.new_page(viewport={"width": 900, "height": 900})
        try:
            page.goto(path.as_uri(), wait_until="load")
            seen[name] = page.evaluate(HOST_STYLES)
            if body:
                title = page.evaluate("getComputedStyle(document.querySelector('.gradscope h1')).fontSize")
                images = page.eval_on_selector_all(".gradscope img", "imgs => imgs.filter(i => i.naturalWidth > 0).length")
        finally:
            page.close()
    assert seen["with the report"] == seen["alone"]
    assert title != "40px" and images >= 6  # its own styles apply inside its block, and its figures show
