"""The manuscript (``paper/``, ``wing.manuscript``): no number typed, every value and table
generated and tested on tiny frames, and the built site read in a real browser.

- The manuscript's source holds no numeric result: only ``{{ name }}`` substitutions, included
  files and an allow-list (citation years and identifiers, claim numbers, equation constants).
- Every substitution it uses is a value the pipeline writes; every table and figure caption
  links to the notebook that made its input.
- The values and tables come out right on small synthetic frames.
- Slow: the tiny-profile pipeline run (``project``, tests/conftest.py) ends with the built
  manuscript, opened in headless Chromium (Debian's ``/usr/bin/chromium``, driven by
  playwright): every image loads, every table is present, every link and cross-reference
  resolves, nothing is left unsubstituted, MathJax rendered, nothing fetched from the network;
  a screenshot is saved under ``results/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import urllib.parse
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from wing.config import load_config
from wing.manuscript.build import FIGURE_SOURCES, notebook_toctree, stage_notebooks
from wing.manuscript.format import interval, listing, p_value, signed
from wing.manuscript.parts import (
    advanced_methods,
    command_values,
    experiment_command,
    not_assessed_text,
    part_reasons,
)
from wing.manuscript.pdf import (
    BROKEN_IMAGES,
    CHROMIUM,
    CHROMIUM_ARGS,
    FIXED_DATE,
    ORIGIN,
    PDF_NAME,
    chromium_missing,
    fixed_dates,
)
from wing.manuscript.tables import (
    TABLE_SOURCES,
    claim_table,
    or_not_assessed,
    paired_table,
    published_table,
    score_table,
    split_table,
)
from wing.manuscript.values import (
    claim_values,
    data_values,
    paired_values,
    paper_values,
    score_values,
    with_reference_aliases,
)
from wing.report import ours_in_percent, published_dfutissue
from wing.statistics.claims import NOT_ASSESSED

PAPER = ROOT / "paper"


def manuscript_sources() -> list[Path]:
    """The manuscript's text (the methods template, ``paper/methods.md``, has its own test
    in tests/test_methods_text.py; ``conf.py`` is configuration)."""
    return sorted(
        [PAPER / "index.md", *(PAPER / "sections").glob("*.md"), *(PAPER / "parts").glob("*.md")]
    )


# ------------------------------------------------------------- no number typed by hand

# What the text may hold: citation years (Chen 2018 ... Kang 2026) and arXiv identifiers, the
# abstract's claim numbers "(1)" .. "(6)", "(2a)", "(2b)"; in equations, the constants 0, 1, 2.
ALLOWED_PATTERNS = [
    re.compile(r"\b(?:19|20)\d\d\b"),
    re.compile(r"arXiv \d{4}\.\d{4,5}"),
    re.compile(r"\(\d[ab]?\)"),
]
EQUATION_CONSTANTS = {"0", "1", "2"}
# A number standing alone: not inside a word (HD95, e0340258, B0) nor a model name
# (ResNet-34, PAR-4), i.e. not preceded by a letter or a letter and a hyphen.
NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)\d+(?:[.,]\d+)*(?![\w])")
SUBSTITUTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
DIRECTIVE_OPTION = re.compile(r"^:[\w-]+:.*$", re.MULTILINE)
LINK_TARGET = re.compile(r"\]\([^)]*\)|href=\"[^\"]*\"")
CROSS_REFERENCE = re.compile(r"\{(?:numref|ref|eq|doc)\}`[^`]*`|^\([\w-]+\)=$", re.MULTILINE)
DISPLAY_MATH = re.compile(r"```\{math\}.*?```|\$\$.*?\$\$", re.DOTALL)
INLINE_MATH = re.compile(r"\$[^$\n]+\$")


def typed_numbers(text: str) -> list[str]:
    """The numbers in manuscript ``text`` that are neither substituted, part of a directive
    option, a link target or a cross-reference label, nor allow-listed."""
    for pattern in (SUBSTITUTION, DIRECTIVE_OPTION, LINK_TARGET, CROSS_REFERENCE):
        text = pattern.sub(" ", text)
    found = []
    for pattern in (DISPLAY_MATH, INLINE_MATH):
        for math in pattern.findall(text):
            found += [n for n in NUMBER.findall(math) if n not in EQUATION_CONSTANTS]
        text = pattern.sub(" ", text)
    for pattern in ALLOWED_PATTERNS:
        text = pattern.sub(" ", text)
    return found + NUMBER.findall(text)


@pytest.mark.parametrize("path", manuscript_sources(), ids=lambda p: p.name)
def test_manuscript_source_types_no_number(path: Path):
    assert typed_numbers(path.read_text(encoding="utf-8")) == [], path


@pytest.mark.parametrize("path", manuscript_sources(), ids=lambda p: p.name)
def test_no_line_of_the_manuscript_is_a_comment(path: Path):
    """A line that starts with ``%`` is a MyST comment: Sphinx drops it without a warning
    (a wrapped "... was 0.35\n% per day" lost its second line and broke the paragraph)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [n for n, line in enumerate(lines, 1) if line.lstrip().startswith("%")] == []


def test_a_planted_number_is_found_and_substitutions_are_not():
    clean = "WING-MTL reached {{ score_wound_reference }} on ResNet-34 (Chen et al., 2018)."
    assert typed_numbers(clean) == []
    assert typed_numbers(clean.replace("{{ score_wound_reference }}", "0.878")) == ["0.878"]
    assert typed_numbers("Of the 8 verdicts") == ["8"]
    assert typed_numbers("a gain of 12 % in claim (2a)") == ["12"]
    assert typed_numbers("$$ L = 3 w_1 $$") == ["3"]
    assert typed_numbers("$r_i^{0}$ and $L_i(0)$") == []
    planted = (PAPER / "sections" / "results.md").read_text(encoding="utf-8")
    planted = planted.replace("{{ score_wound_stl }}", "0.848", 1)
    assert "0.848" in typed_numbers(planted)


def test_every_substitution_is_a_generated_value(tmp_path: Path):
    values = paper_values(_config(tmp_path), _results()) | command_values(_params())
    used = {
        name
        for path in manuscript_sources()
        for name in re.findall(r"\{\{\s*(\w+)\s*\}\}", path.read_text(encoding="utf-8"))
    }
    assert used and used <= set(values), sorted(used - set(values))


CAPTIONED = re.compile(r"```\{(csv-table|figure)\}\s*(.*?)\n(.*?)```", re.DOTALL)


def test_every_table_and_figure_links_to_the_notebook_that_made_it():
    found = 0
    for path in manuscript_sources():
        for kind, argument, body in CAPTIONED.findall(path.read_text(encoding="utf-8")):
            if kind == "csv-table":
                name = re.search(r":file: /_data/tables/(\w+)\.csv", body).group(1)
                source, caption = TABLE_SOURCES[name], argument
            else:
                name = Path(argument.strip()).name
                source, caption = FIGURE_SOURCES[name], body
            assert f"(/notebooks/{source}.ipynb)" in caption, (path.name, name)
            label = re.search(r":name: (\S+)", body).group(1)
            assert label.startswith("tab-" if kind == "csv-table" else "fig-"), label
            found += 1
    assert found >= len(FIGURE_SOURCES)


# ------------------------------------------------------------------- values and tables


def _summary_rows(method: str, wound: float, tissue: float) -> list[dict]:
    return [
        {
            "backbone": "unet",
            "method": method,
            "target": target,
            "metric": "dice",
            "n_patients": 3,
            "mean": mean,
            "ci_low": mean - 0.05,
            "ci_high": mean + 0.05,
        }
        for target, mean in (("wound", wound), ("tissue_mean", tissue), ("slough", tissue))
    ]


def _paired_row(method: str, target: str, difference: float, p: float) -> dict:
    return {
        "backbone": "unet",
        "target": target,
        "method": method,
        "mean_difference": difference,
        "ci_low": difference - 0.01,
        "ci_high": difference + 0.01,
        "ttest_p_holm": p,
        "wilcoxon_p_holm": 0.5,
        "cohens_dz": 1.25,
    }


def test_format_writes_signs_intervals_small_p_values_and_lists():
    assert signed(0.0306) == "+0.031" and signed(-0.0017) == "-0.002"
    assert interval(0.0186, 0.0474) == "+0.019 to +0.047"
    assert p_value(0.00001) == "< 0.001" and p_value(0.1428) == "0.143"
    assert p_value(float("nan")) == NOT_ASSESSED and signed(None) == NOT_ASSESSED
    assert listing(["STL"]) == "STL" and listing(["STL", "EW", "WING"]) == "STL, EW and WING"


def test_score_and_paired_values_read_the_primary_backbone_and_say_what_was_not_run():
    summary = pd.DataFrame(_summary_rows("gradnorm", 0.81234, 0.7) + _summary_rows("stl", 0.8, 0.6))
    values = score_values(summary, ["gradnorm", "stl", "ew"], backbone="unet", metric="dice")
    assert values["score_wound_gradnorm"] == "0.812"
    assert values["score_wound_gradnorm_ci"] == "0.762 to 0.862"
    assert values["score_tissue_mean_stl"] == "0.600"
    assert values["score_wound_ew"] == NOT_ASSESSED == values["score_wound_ew_ci"]
    paired = pd.DataFrame(
        [_paired_row("stl", "wound", 0.03, 0.0004), _paired_row("stl", "tissue_mean", -0.02, 0.2)]
    )
    values = paired_values(paired, ["stl", "ew"], backbone="unet", test="ttest")
    assert values["diff_wound_stl"] == "+0.030" and values["p_wound_stl"] == "< 0.001"
    assert values["diff_tissue_mean_stl_ci"] == "-0.030 to -0.010"
    assert values["p_tissue_mean_ew"] == NOT_ASSESSED
    assert paired_values(paired, ["stl"], "unet", "wilcoxon")["p_wound_stl"] == "0.500"


def test_reference_aliases_copy_every_value_of_the_reference_method():
    values = {"score_wound_gradnorm": "0.8", "delta_mtl_gradnorm": "+1", "score_wound_stl": "0.7"}
    aliased = with_reference_aliases(values, "gradnorm")
    assert aliased["score_wound_reference"] == "0.8" and aliased["delta_mtl_reference"] == "+1"
    assert "score_wound_reference" not in with_reference_aliases(values, "ew")


def test_claim_values_count_the_assessed_headline_verdicts():
    claims = pd.DataFrame(
        {
            "claim_id": ["1", "1", "2a", "5"],
            "headline": [False, True, True, True],
            "verdict": ["supported", "no significant difference", "contradicted", "supported"],
            "reason": ["row", "0 of 2 rows supported", "lost", "design property"],
        }
    )
    values = claim_values(claims)
    assert values["verdict_1"] == "no significant difference"
    assert values["verdict_3"] == NOT_ASSESSED == values["reason_3"]
    assert values["n_claims_assessed"] == "3"
    assert values["n_claims_supported"] == "1" and values["n_claims_contradicted"] == "1"


def test_data_values_count_units_images_and_the_split():
    metadata = pd.DataFrame(
        {"sample_id": list("abcdef"), "patient_id": list("xxyyzz"), "visit": [1, 2] * 3}
    )
    split = pd.DataFrame(
        {
            "sample_id": list("abcdef"),
            "patient_id": list("xxyyzz"),
            "split": ["train"] * 4 + ["test"] * 2,
        }
    )
    values = data_values(metadata, split)
    assert (values["n_units"], values["n_images"], values["visits_per_unit"]) == ("3", "6", "2")
    assert (values["n_train_units"], values["n_test_images"], values["n_validation_units"]) == (
        "2",
        "2",
        "0",
    )
    assert data_values(metadata.assign(fuseg_id="1"), None)["unit"] == "source-photograph group"
    assert split_table(split, "patient")["patients"].tolist() == [2, 1]


def test_tables_write_scores_with_intervals_and_say_not_assessed_when_empty():
    summary = pd.DataFrame(_summary_rows("gradnorm", 0.8, 0.7))
    table = score_table(summary, {"gradnorm": "WING-MTL"}, "dice")
    assert table.loc[0, "method"] == "WING-MTL"
    assert table.loc[0, "wound"] == "0.800 (0.750–0.850)"
    paired = paired_table(pd.DataFrame([_paired_row("ew", "wound", 0.01, 0.04)]), {})
    assert paired.loc[0, "difference"] == "+0.010" and paired.loc[0, "p (t-test, Holm)"] == "0.040"
    empty = paired_table(pd.DataFrame(), {})
    assert empty.iloc[0, 0] == f"{NOT_ASSESSED}: no comparator was run" and len(empty) == 1
    assert or_not_assessed(pd.DataFrame(columns=["a", "b"])).values.tolist() == [[NOT_ASSESSED, ""]]
    claims = pd.DataFrame(
        {
            "claim": ["(1)", "(1) row"],
            "headline": [True, False],
            "verdict": ["s", "s"],
            "reason": ["r", "x"],
        }
    )
    assert claim_table(claims).to_dict("records") == [
        {"claim": "(1)", "verdict": "s", "reason": "r"}
    ]


def test_published_table_sets_this_run_beside_the_published_numbers():
    frame = lambda rows: pd.DataFrame(  # noqa: E731
        rows, columns=["backbone", "method", "seed", "target", "metric", "value"]
    )
    pooled = frame(
        [("unet", "gradnorm", s, "tissue_mean", "dice", v) for s, v in ((0, 0.8), (1, 0.9))]
    )
    per_image = frame([("unet", "gradnorm", 0, "tissue_mean", "dice", 0.6)])
    table = published_table(published_dfutissue(), ours_in_percent(pooled, per_image))
    assert len(table) == len(published_dfutissue()) + 2
    ours = table[table["model"] == "this run: unet gradnorm"].set_index("score")["percent"]
    assert ours.to_dict() == {
        "tissue mean (DSC), per image": "60.00",
        "tissue mean (DSC), pooled": "85.00",
    }


def test_not_assessed_parts_name_the_reason_and_the_generated_command(tmp_path: Path):
    params = _params()
    command = experiment_command(params, "backbones")
    assert command == (
        "dvc exp run -S profile=backbones -S 'train.methods=[stl,ew,gradnorm]' "
        "-S 'train.backbones=[attention_unet,resnet_unet,segformer]'"
    )
    assert experiment_command(params, "dfutissue") == "dvc exp run -S profile=dfutissue"
    config = _config(tmp_path)
    reasons = part_reasons(config, pd.DataFrame(), pd.DataFrame())
    assert reasons["backbones"] == "only one backbone (attention_unet) was trained"
    assert reasons["zoo"] and reasons["architectures"] and reasons["real_data"]
    text = not_assessed_text("backbones", reasons["backbones"], "tiny", params)
    assert text.startswith("*Not assessed in this run (profile `tiny`): only one backbone")
    assert f"Run `{command}` to assess it." in text
    zoo = _config(tmp_path, {"train": {"methods": ["stl", "gradnorm", "pcgrad"]}})
    assert (
        advanced_methods(zoo) == ["pcgrad"] and not part_reasons(zoo, *[pd.DataFrame()] * 2)["zoo"]
    )


def test_stage_notebooks_are_the_stages_and_one_per_training_run(tmp_path: Path):
    names = stage_notebooks(_config(tmp_path))
    assert names[:2] == ["01_prepare", "02_train_attention_unet_ew_seed0"]
    assert len(names) == 6 + 3 * 2 and names[-1] == "07_report"
    toctree = notebook_toctree(names)
    assert "06_compare <notebooks/06_compare>\n" in toctree and toctree.startswith("```{toctree}")


def _params() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def _config(tmp_path: Path, overrides: dict | None = None):
    import yaml

    params = _params()
    params["profile"] = "tiny"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return load_config(path, overrides=overrides)


def _results() -> dict[str, pd.DataFrame]:
    """Tables as the stages write them, a few rows each (enough for every value)."""
    summary = pd.DataFrame(
        _summary_rows("gradnorm", 0.8, 0.7)
        + _summary_rows("stl", 0.8, 0.6)
        + _summary_rows("ew", 0.7, 0.6)
    )
    paired = pd.DataFrame(
        [_paired_row(m, t, 0.01, 0.2) for m in ("stl", "ew") for t in ("wound", "tissue_mean")]
    )
    claims = pd.DataFrame(
        {
            "claim_id": ["1"],
            "claim": ["(1)"],
            "headline": [True],
            "verdict": ["supported"],
            "reason": ["r"],
        }
    )
    metadata = pd.DataFrame({"sample_id": ["a", "b"], "patient_id": ["x", "y"], "visit": [1, 1]})
    empty = pd.DataFrame()
    return {
        "metadata": metadata,
        "split": None,
        "summary": summary,
        "paired": paired,
        "claims": claims,
        **dict.fromkeys(
            [
                "delta",
                "parameters",
                "friedman",
                "healing_rates",
                "healing_errors",
                "agreement",
                "par4_agreement",
                "external_status",
                "external_summary",
                "lutseg_status",
                "lutseg_agreement",
            ],
            empty,
        ),
    }


# ----------------------------------------------------------------- the PDF


def test_fixed_dates_make_two_prints_equal_without_moving_a_byte():
    def printed(when: bytes) -> bytes:
        return (
            b"%PDF-1.4\n1 0 obj\n<</Creator (Chromium)\n/Producer (Skia/PDF m156)\n"
            b"/CreationDate (D:" + when + b"+00'00')\n/ModDate (D:" + when + b"+00'00')>>\n"
            b"endobj\nxref\n0 2\n"
        )

    first, second = printed(b"20261206200207"), printed(b"20270101235959")
    assert first != second
    assert fixed_dates(first) == fixed_dates(second)
    assert len(fixed_dates(first)) == len(first)
    assert fixed_dates(first).count(b"(D:" + FIXED_DATE) == 2
    assert fixed_dates(b"no dates here") == b"no dates here"


@pytest.mark.parametrize(
    ("prints", "kept", "printed"),
    [([b"A", b"A"], b"A", 2), ([b"A", b"B", b"B"], b"B", 3), ([b"A", b"B", b"A"], b"A", 3)],
)
def test_the_pdf_kept_is_one_that_a_second_print_reproduced(
    tmp_path: Path, monkeypatch, prints, kept, printed
):
    import wing.manuscript.pdf as pdf

    chromium = tmp_path / "chromium"
    chromium.write_text("")
    queue = list(prints)
    monkeypatch.setattr(pdf, "_print", lambda folder, page, browser: queue.pop(0))
    assert pdf.print_pdf(tmp_path, chromium=chromium) == kept
    assert len(prints) - len(queue) == printed


def test_three_prints_that_all_differ_stop_the_stage(tmp_path: Path, monkeypatch):
    import wing.manuscript.pdf as pdf

    chromium = tmp_path / "chromium"
    chromium.write_text("")
    queue = [b"A", b"B", b"C", b"A"]
    monkeypatch.setattr(pdf, "_print", lambda folder, page, browser: queue.pop(0))
    with pytest.raises(pdf.PdfError, match="3 prints .* all differed"):
        pdf.print_pdf(tmp_path, chromium=chromium)
    assert queue == [b"A"]


def test_a_missing_chromium_is_named_with_the_fix(tmp_path: Path):
    reason = chromium_missing(tmp_path / "chromium")
    assert str(tmp_path / "chromium") in reason and "make browser" in reason
    (tmp_path / "chromium").write_text("")
    assert chromium_missing(tmp_path / "chromium") == ""


# ----------------------------------------------------------------- read in a real browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's output is the assertions
        pass


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


def _require_chromium() -> None:
    if CHROMIUM.is_file():
        return
    message = (
        f"READER TEST NOT RUN: {CHROMIUM} not found. Install Debian's chromium package "
        "(`make test` does it when run as root); playwright may only drive that browser."
    )
    if os.environ.get("CI"):
        pytest.fail(message + " CI=true requires it.", pytrace=False)
    pytest.skip(message)


# The text a reader sees, without code (where braces and dollars are code, not leftovers).
VISIBLE_TEXT = """() => {
  const body = document.querySelector('main') || document.body;
  const copy = body.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
  return copy.innerText;
}"""
IDS = "() => [...document.querySelectorAll('[id]')].map(e => e.id)"
FILLED_TABLES = """() => [...document.querySelectorAll('table[id]')]
  .filter(t => t.querySelectorAll('tbody tr').length).map(t => t.id)"""
FIGURES_WITH_IMAGES = """() => [...document.querySelectorAll('figure[id]')]
  .filter(f => f.querySelector('img')).map(f => f.id)"""
LINKS = """() => [...document.querySelectorAll('a[href]')].map(a => a.href)"""


@pytest.mark.slow
def test_built_manuscript_reads_in_a_browser(project: Path):
    """The tiny-profile run's manuscript, opened page by page in headless Chromium."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    site = project / "results" / "paper"
    manifest = json.loads((site / "manuscript.json").read_text(encoding="utf-8"))
    assert "index.html" in manifest["pages"] and manifest["tables"] and manifest["figures"]
    published = {f"notebooks/{name}.html" for name in manifest["notebooks"]}
    assert manifest["notebooks"] and published <= set(manifest["pages"])
    server, base = _serve(site)
    outside: list[str] = []
    ids: dict[str, set[str]] = {}
    links: set[str] = set()
    tables: set[str] = set()
    figures: set[str] = set()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1600})

            def route(request_route):
                if request_route.request.url.startswith(base):
                    return request_route.continue_()
                outside.append(request_route.request.url)
                return request_route.abort()

            page.route("**/*", route)
            for name in manifest["pages"]:
                response = page.goto(base + name, wait_until="networkidle")
                assert response and response.ok, name
                if page.locator(".math").count():
                    page.wait_for_function("() => window.MathJax && MathJax.startup")
                    page.evaluate("() => MathJax.startup.promise")
                    assert page.locator("mjx-container").count() >= page.locator(".math").count()
                assert page.evaluate(BROKEN_IMAGES) == [], name
                text = page.evaluate(VISIBLE_TEXT)
                assert "{{" not in text and "}}" not in text, name
                assert not re.search(r"\$[^$\s][^$]*\$", text), name
                assert "???" not in text, name  # Sphinx's mark of an unresolved number
                ids[name] = set(page.evaluate(IDS))
                tables |= set(page.evaluate(FILLED_TABLES))
                figures |= set(page.evaluate(FIGURES_WITH_IMAGES))
                links |= {url for url in page.evaluate(LINKS) if url.startswith(base)}
                if name == "sections/methods.html":
                    assert page.locator("mjx-container").count() > 0, "MathJax did not render"
            page.goto(base + "sections/results.html", wait_until="networkidle")
            page.screenshot(path=str(project / "results" / "paper_screenshot.png"), full_page=True)
            browser.close()
    finally:
        server.shutdown()
    assert outside == [], f"pages asked the network for {outside}"
    assert set(manifest["tables"]) <= tables, sorted(set(manifest["tables"]) - tables)
    assert set(manifest["figures"]) <= figures, sorted(set(manifest["figures"]) - figures)
    for url in sorted(links):
        parsed = urllib.parse.urlparse(url)
        path = urllib.parse.unquote(parsed.path.lstrip("/")) or "index.html"
        assert (site / path).is_file(), f"broken link {url}"
        if parsed.fragment and path.endswith(".html"):
            assert parsed.fragment in ids.get(path, set()), f"no id for link {url}"
    assert (project / "results" / "paper_screenshot.png").stat().st_size > 0


@pytest.mark.slow
def test_printed_manuscript_has_the_pages_text_and_working_links(project: Path):
    """The tiny-profile run's ``manuscript.pdf``: the whole manuscript (every section and
    table caption, values substituted, math rendered), page numbers, cross-references as
    links inside the PDF, and no link into the folder it was printed from."""
    _require_chromium()
    from pypdf import PdfReader

    site = project / "results" / "paper"
    manifest = json.loads((site / "manuscript.json").read_text(encoding="utf-8"))
    assert manifest["pdf"] == PDF_NAME and "pdf_not_built" not in manifest
    reader = PdfReader(site / PDF_NAME)
    assert len(reader.pages) >= 5
    text = "\n".join(page.extract_text() for page in reader.pages)
    values = json.loads((site / "values.json").read_text(encoding="utf-8"))
    for heading in ("Abstract", "Methods", "Results", "Longitudinal", "Limitations"):
        assert heading in text, heading
    assert values["title"].split()[0] in text
    assert "{{" not in text and "}}" not in text and "???" not in text
    assert not re.search(r"\$[^$\s][^$]*\$", text)
    assert f"1 / {len(reader.pages)}" in text  # the footer's page numbers
    assert re.search(r"Table \d", text) and re.search(r"Figure \d", text)
    internal, outside = 0, []
    for page in reader.pages:
        for annotation in page.get("/Annots") or []:
            link = annotation.get_object()
            if "/Dest" in link:
                internal += 1
            elif "/A" in link and "/URI" in link["/A"]:
                outside.append(str(link["/A"]["/URI"]))
    assert internal >= len(manifest["tables"]), "cross-references are not links in the PDF"
    assert not [uri for uri in outside if uri.startswith(ORIGIN)], outside
    images = sum(len(page.images) for page in reader.pages)
    assert images >= len(manifest["figures"])
