"""The methods text is rendered from the run's config and recorded outputs, never typed.

``paper/methods.md`` is a Jinja2 template (``wing.methods_text``): these tests render it with a
changed config and read the values back, check that the template source holds no number
that looks like a result or a hyper-parameter, and that the benchmark sentence and the
published DFUTissue numbers come from data files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from wing.config import Config, load_config
from wing.methods_text import render_methods, template_context
from wing.report import published_dfutissue

TEMPLATE = ROOT / "paper" / "methods.md"
PUBLISHED = ROOT / "paper" / "published" / "dfutissue.csv"

# The only bare numbers the template may hold. Equation and rule constants: 0 (L_i(0), "= 0"
# conventions, "0 = ..." settings) and 1 (1×1 convolutions). Citation years: Oktay, Chen
# 2018; Maninis 2019; Wang 2020; FUSeg 2021; Dhar 2024; Kang 2026. Nothing else.
ALLOWED_NUMBERS = {"0", "1", "2018", "2019", "2020", "2021", "2024", "2026"}
# A number standing alone (not inside a word such as HD95, NYUv2 or e0340258).
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\w)")


def typed_numbers(text: str) -> list[str]:
    """The numbers in ``text`` that are not allow-listed (template expressions included)."""
    return [n for n in NUMBER.findall(text) if n not in ALLOWED_NUMBERS]


def flat(text: str) -> str:
    """Whitespace-normalised text, so assertions ignore where the template breaks lines."""
    return " ".join(text.split())


def tiny_config(tmp_path: Path, overrides: dict | None = None) -> Config:
    """The repository's params.yaml on the tiny profile, with ``overrides`` laid over it."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["profile"] = "tiny"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return load_config(path, overrides=overrides)


def write_bench(path: Path, gradnorm: float, create_graph: float) -> Path:
    record = {
        "device": "cpu",
        "image_size": 48,
        "batch_size": 3,
        "threads": 7,
        "rounds": 11,
        "paired_ratio_to_equal_weighting": {
            "equal_weighting": 1.0,
            "gradnorm": gradnorm,
            "gradnorm_create_graph": create_graph,
        },
    }
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def write_links(folder: Path) -> Path:
    """A five-row link table: four TrainVal crops, three Test crops of which two from train."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "dfutissue_split": ["TrainVal"] * 4 + ["Test"] * 3,
            "dfutissue_id": [f"{i:04d}" for i in range(7)],
            "fuseg_split": ["train"] * 4 + ["train", "train", "validation"],
            "fuseg_id": [f"{i + 1:04d}" for i in range(7)],
            "dice_fibrin_granulation": [0.1, 0.2, 0.3, 0.4, 0.61, 0.73, 0.85],
        }
    )
    table.to_csv(folder / "dfutissue_in_fuseg.csv", index=False)
    return folder


# ---------------------------------------------------------------- values from the config


def test_rendered_text_states_the_config_it_ran_with(tmp_path: Path):
    """``-S recipes.gradnorm.options.alpha=0.5`` on the tiny profile: the text says 0.5."""
    config = tiny_config(tmp_path, {"recipes": {"gradnorm": {"options": {"alpha": 0.5}}}})
    assert config.recipes["gradnorm"].options["alpha"] == 0.5 and config.profile == "tiny"
    text = flat(render_methods(config, bench=None, template=TEMPLATE))
    assert "α = 0.5," in text
    assert "1.5" not in text
    train = config.train
    assert f"learning rate {train.learning_rate:g}," in text
    assert f"batch {train.batch_size}," in text
    assert f"channels {'-'.join(map(str, train.channels))} " in text
    assert f"at most {train.epochs} epochs" in text
    gradnorm_lr = config.recipes["gradnorm"].options["learning_rate"]
    assert f"learning rate {gradnorm_lr:g})" in text
    assert f"over the first {train.initial_loss_batches} batches of a fixed" in text
    assert f"ceil(N / {train.batch_size})" in text
    assert f"resized to {config.data.image_size} px" in text
    assert f"{config.data.synthetic.n_patients} patients" in text
    assert f"({config.compare.n_boot} resamples of patients" in text
    assert f"below {config.compare.significance:g}," in text
    assert "profile `tiny`" in text


def test_default_alpha_is_named_as_the_gradnorm_papers(tmp_path: Path):
    text = flat(render_methods(tiny_config(tmp_path), bench=None, template=TEMPLATE))
    assert "α = 1.5, the GradNorm paper's value for NYUv2" in text
    changed = tiny_config(tmp_path, {"recipes": {"gradnorm": {"options": {"alpha": 2.0}}}})
    text = flat(render_methods(changed, bench=None, template=TEMPLATE))
    assert "α = 2, changed in this run" in text and "1.5" not in text


BRANCHES = [
    ({"train": {"patience": 7}}, "has improved for 7 epochs (`train.patience`)"),
    ({"train": {"patience": 0}}, "no early stopping (`train.patience` = 0)"),
    ({"train": {"steps_per_epoch": 13}}, "takes 13 optimiser steps per epoch"),
    ({"train": {"task_balanced_batches": "on"}}, "(`train.task_balanced_batches` = on)"),
    ({"train": {"task_balanced_batches": "off"}}, "(`train.task_balanced_batches` = off)"),
    ({"train": {"augment": False}}, "no augmentation"),
    (
        {"train": {"last_shared_layer": "decoder.stages.2.merge"}},
        "the network module `decoder.stages.2.merge`",
    ),
    ({"evaluate": {"checkpoint": "last"}}, "(`evaluate.checkpoint` = last): the last epoch's"),
    ({"compare": {"test": "wilcoxon"}}, "by the paired Wilcoxon signed-rank test"),
    ({"compare": {"test": "wilcoxon"}}, "interval of the median difference lies above zero"),
    ({"compare": {"test": "ttest"}}, "by the paired t-test"),
    ({"compare": {"test": "ttest"}}, "interval of the mean difference lies above zero"),
    ({"compare": {"posthoc": "conover"}}, "followed by the Conover post-hoc test"),
    ({"compare": {"significance": 0.01}}, "is below 0.01"),
    ({"compare": {"convergence_tolerance": 0.02}}, "within a relative 0.02 of its minimum"),
    ({"compare": {"convergence_window": 3}}, "means a gap of at most 3 epochs"),
    ({"data": {"wound_label": "tissue_union"}}, "(`data.wound_label` = tissue_union;"),
    ({"data": {"validation_count": 12}}, "; 12 of the"),
    ({"data": {"split": {"train": 0.5, "validation": 0.25, "test": 0.25}}}, "(50/25/25 %"),
]


@pytest.mark.parametrize(("overrides", "phrase"), BRANCHES, ids=[b[1][:40] for b in BRANCHES])
def test_every_setting_reaches_the_text(tmp_path: Path, overrides: dict, phrase: str):
    text = flat(render_methods(tiny_config(tmp_path, overrides), bench=None, template=TEMPLATE))
    assert phrase in text


def test_every_profile_of_params_yaml_renders(tmp_path: Path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for profile in params["profiles"]:
        path = tmp_path / f"{profile}.yaml"
        # as `dvc exp run -S profile=NAME -S train.AXIS=...` sets a profile's declared matrix
        train = {**params["train"], **(params["profiles"][profile].get("matrix") or {})}
        path.write_text(
            yaml.safe_dump({**params, "train": train, "profile": profile}), encoding="utf-8"
        )
        config = load_config(path)
        text = flat(render_methods(config, template=TEMPLATE))
        assert f"profile `{profile}`" in text
        assert f"channels {'-'.join(map(str, config.train.channels))} " in text


def test_undefined_variables_raise(tmp_path: Path):
    template = tmp_path / "methods.md"
    template.write_text("α = {{ gradnorm.alpah }}\n", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError, match="alpah"):
        render_methods(tiny_config(tmp_path), bench=None, template=template)
    template.write_text("{{ not_a_variable }}\n", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError, match="not_a_variable"):
        render_methods(tiny_config(tmp_path), bench=None, template=template)


# ---------------------------------------------------------------- no typed numbers


def test_template_types_no_numbers():
    source = TEMPLATE.read_text(encoding="utf-8")
    assert typed_numbers(source) == [], (
        "paper/methods.md types numbers: take them from the config or a recorded output "
        "(wing.methods_text) instead"
    )
    assert "{{" in source  # it is a template, not pasted text


@pytest.mark.parametrize(
    "line",
    [
        "α = 1.5, as in the paper.",
        "learning rate 1e-3",
        "about 1.03× an equal-weighting step",
        "measured: 24 and 21 minutes",
        "median Dice 0.826 over 110 crops",
        "{{ train.batch_size * 2 }}",
        "95% confidence intervals",
        "2,000 resamples",
    ],
)
def test_the_number_check_catches_typed_numbers(line: str):
    assert typed_numbers(line)


def test_the_number_check_allows_names_and_citations():
    text = "HD95, NYUv2, PLoS ONE e0340258, (Chen et al. 2018), L_i(0), 1×1 convolution."
    assert typed_numbers(text) == []


# ---------------------------------------------------------------- recorded outputs


def test_benchmark_sentence_reads_the_recorded_json(tmp_path: Path):
    config = tiny_config(tmp_path)
    bench = write_bench(tmp_path / "gradnorm_step.json", gradnorm=1.0712, create_graph=1.3149)
    text = flat(render_methods(config, bench=bench, template=TEMPLATE))
    assert "a GradNorm step costs 1.07× an equal-weighting step" in text
    assert "against 1.31× for the common `create_graph` variant" in text
    assert "median over 11 interleaved rounds of the per-round ratio; cpu, 48 px, batch 3" in text
    assert f"7 threads; `{bench}`" in text
    again = write_bench(tmp_path / "other.json", gradnorm=1.5549, create_graph=2.0)
    assert "costs 1.55×" in flat(render_methods(config, bench=again, template=TEMPLATE))


@pytest.mark.parametrize("bench", [None, "missing.json"])
def test_benchmark_not_recorded_prints_no_number(tmp_path: Path, bench):
    bench = tmp_path / bench if bench else None
    text = flat(render_methods(tiny_config(tmp_path), bench=bench, template=TEMPLATE))
    assert "was not recorded" in text
    assert "×" not in text.replace("1×1", "")


def test_link_table_counts_and_agreement_are_read_at_render_time(tmp_path: Path):
    links = write_links(tmp_path / "links")
    config = tiny_config(tmp_path, {"data": {"raw": {"links": str(links)}}})
    text = flat(render_methods(config, bench=None, template=TEMPLATE))
    assert "median Dice 0.400 over 7 crops, 0.730 over the 3 Test crops" in text
    assert "on 7 crops of diabetic-foot-ulcer photographs" in text
    assert f"{config.data.validation_count} of the 4 TrainVal crops" in text
    assert "(2 of the 3 Test crops come from FUSeg *training* images)" in text
    absent = tiny_config(tmp_path, {"data": {"raw": {"links": str(tmp_path / "nowhere")}}})
    text = flat(render_methods(absent, bench=None, template=TEMPLATE))
    assert "median Dice" not in text and "come from FUSeg *training*" not in text
    assert f"{absent.data.validation_count} of the TrainVal crops" in text


def test_extra_variables_override_the_computed_ones(tmp_path: Path):
    config = tiny_config(tmp_path)
    context = template_context(config, bench=None, extra={"links": None, "profile": "x"})
    assert context["links"] is None and context["profile"] == "x"
    assert context["train"] is config.train


# ---------------------------------------------------------------- published numbers


def test_published_dfutissue_numbers_come_from_the_cited_file():
    table = pd.read_csv(PUBLISHED)
    assert list(table.columns) == ["model", "score", "percent", "source"]
    assert table["source"].str.contains("arXiv 2406.16012").all()
    assert table["percent"].between(0, 100).all() and len(table) > 0
    shown = published_dfutissue(PUBLISHED)
    assert list(shown.columns) == ["published model", "score", "percent", "source"]
    pd.testing.assert_series_equal(shown["percent"], table["percent"])
    readme = (PUBLISHED.parent / "README.md").read_text(encoding="utf-8")
    assert "arXiv 2406.16012" in readme and "dfutissue.csv" in readme


def test_every_registered_architecture_is_named_in_the_methods_text():
    from wing.methods_text import ARCHITECTURE_TEXT
    from wing.models import ARCHITECTURES

    assert set(ARCHITECTURE_TEXT) == set(ARCHITECTURES.names())


def test_interval_level_is_the_one_compare_uses_whatever_the_significance(tmp_path: Path):
    """The comparison's bootstrap intervals are 95 % whatever compare.significance is; the
    text must state that level, not 1 - significance."""
    from wing.statistics.paired import CONFIDENCE

    config = tiny_config(tmp_path, {"compare": {"significance": 0.01}})
    assert template_context(config, bench=None)["confidence"] == CONFIDENCE
    text = flat(render_methods(config, bench=None, template=TEMPLATE))
    assert f"bootstrap {CONFIDENCE * 100:g}% confidence intervals" in text
    assert "99% confidence" not in text and "0.01" in text
