"""The report's own formatting: the percent table, the unit of analysis, label agreement."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import ROOT
from wing.config import load_config
from wing.report import (
    _claim_ids,
    analysis_unit,
    architecture_cost_table,
    balancer_cost_table,
    claim_rules,
    label_agreement,
    ours_in_percent,
    recipe_table,
)


def _frame(rows):
    return pd.DataFrame(rows, columns=["backbone", "method", "seed", "target", "metric", "value"])


def test_percent_table_means_over_seeds_per_convention_and_drops_other_metrics():
    pooled = _frame(
        [
            ("unet", "gradnorm", 0, "wound", "dice", 0.80),
            ("unet", "gradnorm", 1, "wound", "dice", 0.90),
            ("unet", "gradnorm", 0, "wound", "hd95", 7.0),  # not a percent: left out
        ]
    )
    per_image = _frame(
        [
            ("unet", "gradnorm", 0, "wound", "dice", 0.60),
            ("unet", "gradnorm", 1, "wound", "dice", 0.70),
            ("unet", "gradnorm", 0, "wound", "iou", 0.50),
        ]
    )
    table = ours_in_percent(pooled, per_image).set_index("convention")
    assert table.loc["pooled", ("dice", "wound")] == pytest.approx(85.0)
    assert table.loc["per image", ("dice", "wound")] == pytest.approx(65.0)
    assert table.loc["per image", ("iou", "wound")] == pytest.approx(50.0)
    assert "hd95" not in {column[0] for column in table.columns}


def test_unit_is_the_photograph_group_for_fuseg_crops_and_the_patient_otherwise():
    assert analysis_unit(pd.DataFrame({"patient_id": ["a"], "fuseg_id": ["0001"]})) == (
        "source-photograph group"
    )
    assert analysis_unit(pd.DataFrame({"patient_id": ["a"]})) == "patient"


def test_label_agreement_puts_this_dataset_beside_the_link_table(tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    pd.DataFrame(
        {
            "dfutissue_split": ["TrainVal", "TrainVal", "Test"],
            "dfutissue_id": ["0001", "0002", "0003"],
            "fuseg_split": ["train", "train", "train"],
            "dice_fibrin_granulation": [0.5, 0.7, 0.9],
        }
    ).to_csv(links / "dfutissue_in_fuseg.csv", index=False)
    metadata = pd.DataFrame({"wound_agreement_dice": [0.8, 0.9, 1.0, float("nan")]})
    table = label_agreement(metadata, links).set_index("label pair")
    assert len(table) == 3
    ours = table.iloc[0]
    assert ours["images"] == 3 and ours["median Dice"] == pytest.approx(0.9)
    assert table.iloc[1]["median Dice"] == pytest.approx(0.7)  # all crops
    assert table.iloc[2]["median Dice"] == pytest.approx(0.9)  # Test crops
    assert label_agreement(pd.DataFrame({"x": [1]}), None).empty


def test_recipe_table_names_each_method_of_the_matrix_with_its_family_and_options():
    config = load_config(
        ROOT / "params.yaml",
        overrides={"train": {"methods": ["stl", "gradnorm", "pcgrad", "mt_cool"]}},
    )
    table = recipe_table(config).set_index("method")
    assert list(table.index) == ["stl", "gradnorm", "pcgrad", "mt_cool"]
    assert table.loc["stl", "networks"] == "one per task"
    assert table.loc["gradnorm", "family"] == "loss weighting"
    assert table.loc["pcgrad", "family"] == "gradient aggregation"
    assert table.loc["mt_cool", "options"] == "radius=0.05, period=1"


def test_claim_rules_state_the_backbone_rule_at_the_run_s_significance():
    config = load_config(ROOT / "params.yaml", overrides={"compare": {"significance": 0.01}})
    rules = claim_rules(config)
    assert "<b>Claim (4).</b>" in rules and "interaction" in rules
    assert "(p_Holm &gt;= 0.01)" in rules and "{significance}" not in rules


def test_assessed_and_not_assessed_claims_split_the_headline_rows():
    headline = pd.DataFrame(
        {
            "claim_id": ["1", "2a", "3", "delta_mtl"],
            "verdict": [
                "supported",
                "no significant difference",
                "not assessed",
                "no significant difference",
            ],
        }
    )
    assert _claim_ids(headline, assessed=True) == ["(1)", "(2a)", "delta_mtl"]
    assert _claim_ids(headline, assessed=False) == ["(3)"]


def test_balancer_cost_table_reads_the_benchmark_and_says_where_it_was_measured(tmp_path):
    method = {
        "family": "loss weighting",
        "parameters": 10,
        "median_step_seconds": 0.2,
        "ratio_to_ew_quartiles": [1.01, 1.04],
        "ratio_to_ew": 1.02,
        "peak_memory_bytes": 2**21,
        "peak_memory_ratio_to_ew": 1.0,
        "target_ratio": 1.05,
        "target_status": "met",
    }
    slow = {**method, "family": "gradient aggregation", "ratio_to_ew": 1.9}
    slow.update(target_ratio=None, target_status="measured, no target")
    result = {
        "order": ["gradnorm", "pcgrad"],
        "methods": {"gradnorm": method, "pcgrad": slow},
        "date": "2026-11-24T10:00:00+00:00",
        "device_name": "Some CPU",
        "device": "cpu",
        "threads": 2,
        "torch": "2.14.1",
        "torchjd": "0.18.0",
        "rounds": 40,
        "warmup": 3,
        "batch_size": 8,
        "image_size": 96,
        "backbone": "attention_unet",
        "ratio": "median of ratios",
    }
    table, where = balancer_cost_table(result)
    assert list(table["method"]) == ["gradnorm", "pcgrad"]
    assert list(table["× EW step"]) == [1.02, 1.9]
    assert list(table["target"]) == ["≤ 1.05×: met", "measured, no target"]
    assert table["peak memory (MiB)"].iloc[0] == 2.0
    assert "2026-11-24" in where and "Some CPU" in where and "40 interleaved" in where
    empty, missing = balancer_cost_table(tmp_path / "absent.json")
    assert empty.empty and "not been recorded" in missing


def test_architecture_cost_table_reads_the_benchmark_and_says_where_it_was_measured(tmp_path):
    hard = {
        "backbone": "attention_unet",
        "label": "hard sharing",
        "networks": 1,
        "parameters": 100,
        "shared_parameters": 90,
        "task_specific_parameters": 10,
        "macs": 2_500_000,
        "macs_ratio_to_hard_sharing": 1.0,
        "median_step_seconds": 0.2,
        "step_ratio_to_hard_sharing": 1.0,
        "step_ratio_quartiles": [1.0, 1.0],
        "peak_memory_bytes": 2**21,
        "peak_memory_ratio_to_hard_sharing": 1.0,
        "peak_memory_bytes_one_network_at_a_time": None,
    }
    stl = {**hard, "label": "STL pair", "networks": 2, "parameters": 190}
    stl.update(shared_parameters=0, task_specific_parameters=190, macs=4_900_000)
    stl.update(macs_ratio_to_hard_sharing=1.96, step_ratio_to_hard_sharing=1.93)
    stl.update(step_ratio_quartiles=[1.8, 2.05], peak_memory_bytes=2**22)
    stl.update(peak_memory_ratio_to_hard_sharing=2.0, peak_memory_bytes_one_network_at_a_time=2**21)
    result = {
        "rows": [hard, stl],
        "date": "2026-11-25T10:00:00+00:00",
        "device_name": "Some CPU",
        "device": "cpu",
        "threads": 2,
        "torch": "2.14.1",
        "rounds": 20,
        "warmup": 3,
        "batch_size": 8,
        "image_size": 96,
        "step": "equal weighting, Adam",
        "ratio": "median of ratios",
        "macs_measure": "FLOPs / 2",
        "budget": "the same optimiser steps",
    }
    table, where = architecture_cost_table(result)
    assert list(table["architecture"]) == ["hard sharing", "STL pair"]
    assert list(table["× HS step"]) == [1.0, 1.93]
    assert list(table["shared"]) == [90, 0] and list(table["task-specific"]) == [10, 190]
    assert list(table["MACs / forward (M)"]) == [2.5, 4.9]
    assert list(table["peak memory (MiB)"]) == [2.0, 4.0]
    assert table["IQR of ratio"].iloc[1] == "1.80–2.05"
    assert pd.isna(table["one network at a time (MiB)"].iloc[0])
    assert table["one network at a time (MiB)"].iloc[1] == 2.0
    assert "2026-11-25" in where and "Some CPU" in where and "20 interleaved" in where
    assert "FLOPs / 2" in where and "the same optimiser steps" in where
    empty, missing = architecture_cost_table(tmp_path / "absent.json")
    assert empty.empty and "not been recorded" in missing


def test_throughput_and_pipeline_cost_tables_read_the_recorded_benchmarks(tmp_path):
    from wing.report import pipeline_cost_table, throughput_tables

    rows, options, where = throughput_tables()
    recorded = json.loads((ROOT / "bench/results/training_throughput.json").read_text())
    assert len(rows) == len(recorded["rows"]) and len(options) == len(recorded["speed_options"])
    assert {"images/s", "end to end / model only", "× STL pair step"} <= set(rows.columns)
    assert recorded["date"][:10] in where
    missing = tmp_path / "absent.json"
    assert throughput_tables(missing)[2] == "The throughput benchmark has not been recorded."
    assert pipeline_cost_table(missing, missing)[1] == "The pipeline cost has not been recorded."

    cost = {
        "date": "2026-11-25T00:00:00+00:00", "commit": "abcdef0123", "profile": "quick",
        "cpu_count": 2, "stages_run": 12, "forced_repro_seconds": 840.0,
        "noop_repro_seconds": 3.5, "changed_outputs": {},
    }  # fmt: skip
    table, note = pipeline_cost_table(cost, missing)
    assert list(table["value"]) == ["14.0 min", "3.5 s", "none (byte-identical)"]
    assert "abcdef0" in note and "on 2 cores." in note  # a record without the processor
    machine = {"device_name": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512"}
    _, note = pipeline_cost_table(cost | machine, missing)
    assert "on 2 cores (Intel(R) Xeon(R) Processor, AVX512)." in note
    table, _ = pipeline_cost_table(cost | {"changed_outputs": {"report": ["x"]}}, missing)
    assert table["value"].iloc[2] == "report"
