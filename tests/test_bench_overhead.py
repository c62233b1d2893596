"""bench/stage_overhead.py runs one round (a kernel start per stage, two more starts) and writes a
well-formed JSON: the quick profile's stage count from dvc.yaml and params.yaml, the stage
notebooks' imports, and shares that are the arithmetic of what it measured."""

from __future__ import annotations

import json
import math

import yaml

from conftest import ROOT, load_bench

OTHER_SUBJECTS = {"papermill", "script"}


def test_stage_overhead_benchmark_schema_and_invariants(tmp_path):
    out = tmp_path / "stage_overhead.json"
    module = load_bench("stage_overhead")
    returned = module.main(
        [
            *("--rounds", "1", "--warmup", "0", "--quick-wall-seconds", "100"),
            *("--dvc-yaml", str(ROOT / "dvc.yaml"), "--params", str(ROOT / "params.yaml")),
            *("--project", str(ROOT), "--out", str(out)),
        ]
    )
    result = json.loads(out.read_text())
    assert result == json.loads(json.dumps(returned))
    assert result["kernel"]["name"] == "wing" and result["quick_wall_seconds"] == 100

    # every stage once, the train stage once per run of its matrix
    train = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    matrix = len(train["backbones"]) * len(train["methods"]) * len(train["seeds"])
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(result["stage_counts"]) == set(stages) == set(result["stage_notebooks"])
    assert result["stage_counts"]["train"] == matrix
    once = [name for name, stage in stages.items() if "matrix" not in stage]
    assert len(once) >= 6  # prepare, evaluate, external, longitudinal, compare, report
    expected = matrix + len(once)
    assert result["stages"] == expected == sum(result["stage_counts"].values())
    assert "from wing.training.loop import train_run" in result["imports"]
    assert any(s.startswith("from wing.evaluation") for s in result["imports"])
    assert len(result["imports"]) == len(set(result["imports"]))

    subjects = result["subjects"]
    assert set(subjects) == {f"stage:{name}" for name in stages} | OTHER_SUBJECTS
    for name, subject in subjects.items():
        assert len(subject["seconds"]) == 1 and subject["median_seconds"] > 0, name
    script = subjects["script"]
    assert len(script["imports_seconds"]) == 1
    assert 0 < script["imports_median_seconds"] < script["median_seconds"]
    (overhead,) = result["notebook_overhead_seconds"]
    assert overhead == subjects["papermill"]["seconds"][0] - script["seconds"][0]

    # the pipeline's fixed cost: each stage's own, times the runs dvc repro makes of it
    per_stage = result["per_stage_fixed_seconds"]
    assert per_stage == {name: subjects[f"stage:{name}"]["median_seconds"] for name in stages}
    fixed = result["fixed_cost"]
    total = sum(per_stage[name] * result["stage_counts"][name] for name in stages)
    assert math.isclose(fixed["total_seconds"], total)
    for name in ("fixed_cost", "notebook_overhead"):
        entry = result[name]
        assert math.isfinite(entry["fraction"]), name
        assert math.isclose(entry["total_seconds"], entry["per_stage_seconds"] * result["stages"])
        assert entry["fraction"] == entry["total_seconds"] / 100
        assert entry["target_fraction"] == 0.10
        assert entry["target_met"] == (entry["fraction"] <= 0.10)
    table = module.format_table(result)
    assert "fixed cost" in table and "notebook overhead" in table
