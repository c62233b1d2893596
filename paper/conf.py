"""Sphinx configuration of the manuscript (built by the `paper` stage, wing.manuscript.build).

The stage copies this file into a source folder beside the generated `_data/values.json`
(every in-text value, substituted for {{ name }}), `_data/tables/` (every table),
`_generated/` (methods text, optional parts, figures) and `notebooks/` (the run's executed
notebooks). Offline: nothing is executed and nothing is fetched; MathJax is served from
`_static/mathjax/` (the `mathjax` npm package, installed by the set-up).
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
values = json.loads((HERE / "_data" / "values.json").read_text(encoding="utf-8"))

project = values["title"]
author = "the wing compendium"
copyright = ""  # no build date in the pages
language = "en"

extensions = ["myst_nb"]
myst_enable_extensions = ["dollarmath", "amsmath", "substitution", "colon_fence"]
myst_substitutions = values
myst_heading_anchors = 3

# The executed notebooks are published as the pipeline wrote them, never re-run.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no widget JavaScript from a CDN
nb_merge_streams = True

numfig = True
numfig_format = {"figure": "Figure %s", "table": "Table %s", "section": "Section %s"}

exclude_patterns = ["_generated", "_data", "_static"]
html_theme = "sphinx_book_theme"
html_title = values["title"]
html_static_path = ["_static"]
html_extra_path = ["_data"]  # values.json and tables/*.csv published beside the pages
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
mathjax_path = "mathjax/tex-svg.js"  # relative to _static: the local copy, no CDN

# The PDF (wing.manuscript.pdf: `-b singlehtml -t pdf`, printed by Chromium) is the
# manuscript alone: the executed notebooks are published with the HTML site, so they are left
# out, and a caption's "Made by" link to one stays as its text.
if tags.has("pdf"):  # noqa: F821 (Sphinx defines `tags` when it reads this file)
    exclude_patterns.append("notebooks")
    suppress_warnings = ["myst.xref_missing"]
