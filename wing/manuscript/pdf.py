"""The manuscript as one PDF: Sphinx's single-page HTML of it, printed by headless Chromium.

Why Chromium rather than Sphinx's LaTeX builder: the LaTeX route needs a TeX distribution
(hundreds of MB of Debian packages, and XeLaTeX with its fonts for the text's Unicode: Δ, ≤,
×), none of which the project installs; Chromium is the browser the reader test already
drives (Debian's ``/usr/bin/chromium``, installed by the set-up), and it prints exactly the
HTML a reader sees, MathJax's SVG included, without downloading anything.

What this module adds to Sphinx and Chromium, and why it is written here:

- the single page leaves out the executed notebooks (they are published with the HTML site;
  a caption's "Made by" names its notebook as text): Sphinx runs with the tag ``pdf``, which
  ``paper/conf.py`` reads;
- the page is served to Chromium from a fixed origin through playwright's request routing,
  from the built folder and nothing else, so nothing is fetched from the network; links into
  the built folder become text (:data:`LOCAL_LINKS_TO_TEXT`), cross-references stay links;
- Chromium writes the time of printing as ``/CreationDate`` and ``/ModDate``;
  :func:`fixed_dates` replaces them with a constant of the same length (the offsets of the
  cross-reference table stay valid), so two builds of the same results give the same bytes.
"""

from __future__ import annotations

import concurrent.futures
import mimetypes
import re
import urllib.parse
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ORIGIN = "http://manuscript.invalid/"  # a reserved name: never resolved, only routed
PDF_NAME = "manuscript.pdf"
NOTEBOOKS_NOTE = (
    "The executed notebooks of this run are published with the HTML manuscript "
    "(`notebooks/` beside `index.html`), rendered read-only; each caption names the notebook "
    "that made its table or figure.\n"
)
# Chromium's PDF dates, e.g. /CreationDate (D:20261206200207+00'00')
PDF_DATE = re.compile(rb"/(CreationDate|ModDate) \(D:(\d{14})")
FIXED_DATE = b"20000101000000"  # not a build time: the same for every build
FOOTER = (
    '<div style="font-size:8px;width:100%;text-align:center;color:#555">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)


# A link from the page to another file of the built folder (a figure's image file, a page of
# the site) would point nowhere from a PDF: it is printed as plain text. Links within the page
# (cross-references, which Chromium turns into the PDF's own destinations) and links to the
# web (a reference's DOI) stay links.
LOCAL_LINKS_TO_TEXT = """(origin) => {
  for (const a of document.querySelectorAll('a[href]')) {
    const url = new URL(a.href);
    const samePage = url.hash && url.pathname === location.pathname;
    if (a.href.startsWith(origin) && !samePage) a.removeAttribute('href');
  }
}"""


# The images of the page that did not load (their src); the reader test asks the same.
BROKEN_IMAGES = """() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
  .map(i => i.getAttribute('src'))"""
# Fonts loaded and two frames drawn after the last script's change: the layout to print.
SETTLED = """() => document.fonts.ready.then(
  () => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done))))"""
PRINTS = 3  # at most; two that agree are kept (print_pdf)


class PdfError(RuntimeError):
    """The PDF could not be printed; the message says why."""


def chromium_missing(chromium: Path = CHROMIUM) -> str:
    """Why the PDF cannot be printed here ("" where it can)."""
    if chromium.is_file():
        return ""
    return (
        f"{chromium} not found: install Debian's chromium package (`make browser`, as root) "
        "and run `dvc repro -f -s paper`"
    )


def single_page_build(source: Path, output: Path, doctrees: Path) -> Path:
    """Sphinx's ``singlehtml`` builder on the assembled manuscript, tagged ``pdf`` (the
    executed notebooks left out); returns the page. Warnings stop it, as in the HTML build."""
    from sphinx.cmd.build import build_main

    (source / "_generated" / "notebooks.md").write_text(NOTEBOOKS_NOTE, encoding="utf-8")
    args = ["-b", "singlehtml", "-t", "pdf", "-q", "-W", "--keep-going", "-j", "1", "-E"]
    if build_main([*args, "-d", str(doctrees), str(source), str(output)]) != 0:
        raise PdfError("Sphinx's single-page build stopped on the warnings above")
    return output / "index.html"


def fixed_dates(pdf: bytes) -> bytes:
    """``pdf`` with its creation and modification dates set to :data:`FIXED_DATE` (same
    length, so every byte offset stays where it was)."""
    return PDF_DATE.sub(lambda m: b"/" + m.group(1) + b" (D:" + FIXED_DATE, pdf)


def _print(folder: Path, page: str, chromium: Path) -> bytes:
    from playwright.sync_api import sync_playwright

    folder = folder.resolve()

    def serve(route) -> None:
        url = route.request.url
        if not url.startswith(ORIGIN):
            route.abort()  # the page may load nothing from outside the built folder
            return
        relative = urllib.parse.unquote(urllib.parse.urlsplit(url).path).lstrip("/")
        path = (folder / relative).resolve()
        if not path.is_file() or folder not in path.parents:
            route.fulfill(status=404, body="")
            return
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        route.fulfill(status=200, body=path.read_bytes(), content_type=kind)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            tab.route("**/*", serve)
            response = tab.goto(ORIGIN + page, wait_until="networkidle")
            if response is None or not response.ok:
                raise PdfError(f"Chromium could not open {folder / page}")
            if tab.locator(".math").count():
                tab.wait_for_function("() => window.MathJax && MathJax.startup")
                tab.evaluate("() => MathJax.startup.promise")
            tab.evaluate(SETTLED)
            broken = tab.evaluate(BROKEN_IMAGES)
            if broken:
                raise PdfError(f"images that did not load in {folder / page}: {broken}")
            tab.evaluate(LOCAL_LINKS_TO_TEXT, ORIGIN)
            return tab.pdf(
                format="A4",
                margin={"top": "16mm", "bottom": "16mm", "left": "14mm", "right": "14mm"},
                display_header_footer=True,
                header_template="<div></div>",
                footer_template=FOOTER,
            )
        finally:
            browser.close()


def print_pdf(folder: Path, page: str = "index.html", chromium: Path = CHROMIUM) -> bytes:
    """``folder/page`` printed to PDF by headless Chromium, with fixed dates: the first print
    that a second one, from a fresh browser, reproduces to the byte (at most :data:`PRINTS`).

    Why more than one print: Chromium's layout is not always the same. Of 22 prints of the
    quick profile's manuscript on one machine (2026-12-06), one placed one run of glyphs
    0.594 pt higher than the other 21 did; the rest of its 20 pages was identical. Two prints
    that agree are what a hashed output can rely on; three that all differ stop the stage.

    Playwright's synchronous API refuses to run inside a running event loop (a Jupyter
    kernel's cell has one), so Chromium is driven from a worker thread."""
    if reason := chromium_missing(chromium):
        raise PdfError(reason)
    prints: list[bytes] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
        while len(prints) < PRINTS:
            printed = fixed_dates(worker.submit(_print, Path(folder), page, chromium).result())
            if printed in prints:
                return printed
            prints.append(printed)
    raise PdfError(
        f"{PRINTS} prints of {Path(folder) / page} all differed: Chromium's layout did not settle"
    )
