"""A PNG of the example notebook as Jupyter shows it, for the README (headless Chromium).

Runs ``docs/examples/classic_and_own_model.ipynb`` in a real kernel (nbclient), lays out the code
cells and their outputs (each output's ``text/html``, else its text) in one page, and takes a
picture of the cells from ``--first`` to ``--last``:

    python docs/examples/notebook_screenshot.py docs/notebook.png --first 2 --last 3

Needs nbclient and ipykernel, Debian's ``chromium`` and ``playwright`` (all in the test set-up).
"""

import argparse
import html
import shutil
import tempfile
from pathlib import Path

import nbclient
import nbformat
from playwright.sync_api import sync_playwright

NOTEBOOK = Path(__file__).with_name("classic_and_own_model.ipynb")

parser = argparse.ArgumentParser()
parser.add_argument("png", type=Path)
parser.add_argument("--first", type=int, default=2, help="the first code cell shown (0 = the first)")
parser.add_argument("--last", type=int, default=3, help="the last code cell shown")
parser.add_argument("--width", type=int, default=900)
args = parser.parse_args()

nb = nbformat.read(NOTEBOOK, as_version=4)
nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                        resources={"metadata": {"path": tempfile.mkdtemp()}}).execute()
cells = []
for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
    if not args.first <= i <= args.last:
        continue
    outputs = []
    for out in cell.outputs:
        data = out.get("data", {})
        if "text/html" in data:
            outputs.append(data["text/html"])
        elif out.output_type == "stream":
            outputs.append(f"<pre>{html.escape(out.text)}</pre>")
        elif "text/plain" in data:
            outputs.append(f"<pre>{html.escape(data['text/plain'])}</pre>")
    cells.append(f'<div class="cell"><pre class="in">{html.escape(cell.source)}</pre>'
                 f'<div class="out">{"".join(outputs)}</div></div>')
page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{font-family:sans-serif;margin:12px}'
        '.cell{margin-bottom:18px}.in{background:#f5f5f5;border:1px solid #e0e0e0;padding:8px;font-size:13px}'
        '.out{padding:4px 8px}</style></head><body>' + "".join(cells) + "</body></html>")
work = Path(tempfile.mkdtemp()) / "notebook.html"
work.write_text(page, encoding="utf-8")
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True)
    try:
        view = browser.new_page(viewport={"width": args.width, "height": 900})
        view.goto(work.as_uri(), wait_until="load")
        view.screenshot(path=str(args.png), full_page=True)
    finally:
        browser.close()
print(f"{args.png}: code cells {args.first}-{args.last} of {NOTEBOOK.name}")
