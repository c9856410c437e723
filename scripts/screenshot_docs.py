"""Screenshots of the built documentation site at a phone's and a desktop's width.

Build the site first (``nox -s docs``, or ``sphinx-build -b html docs
docs/_build/html``), then::

    python scripts/screenshot_docs.py                       # docs/_build/html -> docs/_build/screenshots
    python scripts/screenshot_docs.py --site /tmp/docs-site --out /tmp/shots --widths 390 1280 --height 6000

It needs a headless Chromium or Chrome on the PATH (``apt-get install
chromium``); without one it says so and exits with status 0, writing nothing.
Chrome's windows are at least 500 px wide, so a page is shown inside an
``<iframe>`` of the asked width: the page sees that width as its viewport, as
on a phone. Each screenshot is ``PAGE-WIDTH.png``; it shows the top `--height`
pixels of the page.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["index", "tutorial", "gallery", "how_it_works", "benchmarks", "derivative", "backends"]
BROWSERS = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"]
MIN_WINDOW = 500  # Chrome's narrowest window, in CSS pixels


def find_browser() -> str | None:
    """The first headless-capable browser on the PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def frame_page(page: Path, width: int, height: int, folder: Path) -> Path:
    """An HTML file that shows `page` in an iframe `width` CSS pixels wide."""
    frame = folder / f"{page.stem}-{width}.html"
    frame.write_text(
        "<!doctype html><html><body style='margin:0'>"
        f"<iframe src='{page.resolve().as_uri()}' width='{width}' height='{height}' "
        "style='border:0;display:block'></iframe></body></html>",
        encoding="utf-8",
    )
    return frame


def screenshot(browser: str, page: Path, width: int, height: int, out: Path, folder: Path) -> Path:
    """Write the screenshot of `page` at `width` to `out`/PAGE-WIDTH.png and return its path."""
    target = out / f"{page.stem}-{width}.png"
    url = frame_page(page, width, height, folder).as_uri() if width < MIN_WINDOW else page.resolve().as_uri()
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--allow-file-access-from-files", "--virtual-time-budget=5000",
               f"--window-size={max(width, MIN_WINDOW)},{height}", f"--screenshot={target}", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not target.exists():
        raise RuntimeError(f"{browser} failed on {page.name} at {width} px: {done.stderr.strip()[-500:]}")
    if width < MIN_WINDOW:  # the window was wider than the frame: keep the frame
        _crop(target, width)
    return target


def _crop(png: Path, width: int) -> None:
    try:
        from PIL import Image
    except ImportError:  # keep the whole window: the frame is its left part
        return
    with Image.open(png) as image:
        cropped = image.crop((0, 0, width, image.height))
    cropped.save(png)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "docs" / "_build" / "html",
                        help="the built site (default: docs/_build/html)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "_build" / "screenshots",
                        help="where the PNGs go (default: docs/_build/screenshots)")
    parser.add_argument("--pages", nargs="+", default=PAGES, help="page names without .html")
    parser.add_argument("--widths", nargs="+", type=int, default=[390, 1280], help="viewport widths in CSS px")
    parser.add_argument("--height", type=int, default=4000, help="pixels of each page to capture")
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print(f"no headless browser found (looked for {', '.join(BROWSERS)}); install one, "
              "e.g. `apt-get install chromium`; no screenshots taken")
        return 0
    missing = [p for p in args.pages if not (args.site / f"{p}.html").exists()]
    if missing:
        parser.error(f"--site {args.site} has no {', '.join(m + '.html' for m in missing)}: build the site first")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.pages:
            for width in args.widths:
                shot = screenshot(browser, args.site / f"{name}.html", width, args.height, args.out, Path(folder))
                print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
