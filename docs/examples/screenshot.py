"""A PNG of the top of a rendered report, as the README shows it (headless Chromium).

    python docs/examples/screenshot.py reports/example-mnist-2x2/report.html reports/example-mnist-2x2/screenshot.png --height 2400

Needs Debian's ``chromium`` and the ``playwright`` package (both in the test set-up).
"""

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

parser = argparse.ArgumentParser()
parser.add_argument("report", type=Path)
parser.add_argument("png", type=Path)
parser.add_argument("--width", type=int, default=1300)
parser.add_argument("--height", type=int, default=900, help="pixels from the top of the page")
args = parser.parse_args()

chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if chromium is None:
    raise SystemExit("no chromium on this machine: apt-get install chromium")
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True)
    try:
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.report.resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(args.png), clip={"x": 0, "y": 0, "width": args.width, "height": args.height},
                        full_page=True)
    finally:
        browser.close()
print(args.png)
