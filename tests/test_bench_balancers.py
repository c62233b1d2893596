"""The benchmarks run (on a tiny problem) and write well-formed JSON, so they cannot rot
between the runs that record them."""

from __future__ import annotations

import json
import math

from conftest import ROOT, load_bench
from wing.config import load_config


def _bench(name: str = "balancer_step"):
    return load_bench(name)


def test_balancer_step_benchmark_schema(tmp_path):
    out = tmp_path / "balancer_step.json"
    tiny = ["--rounds", "1", "--warmup", "0", "--image-size", "32", "--batch-size", "2"]
    tiny += ["--channels", "4", "8", "16", "--strides", "2", "2", "--device", "cpu"]
    returned = _bench().main([*tiny, "--params", str(ROOT / "params.yaml"), "--out", str(out)])
    result = json.loads(out.read_text())
    assert result == json.loads(json.dumps(returned))
    recipes = {
        name: recipe
        for name, recipe in load_config(ROOT / "params.yaml").recipes.items()
        if recipe.architecture == "hard_sharing"  # the seed architectures: architecture_cost
    }
    assert set(result["methods"]) == set(recipes) and result["order"] == list(recipes)
    assert (result["rounds"], result["image_size"], result["device"]) == (1, 32, "cpu")
    assert result["methods"]["ew"]["ratio_to_ew"] == 1.0
    for name, method in result["methods"].items():
        assert math.isfinite(method["ratio_to_ew"]) and method["ratio_to_ew"] > 0, name
        assert method["median_step_seconds"] > 0 and len(method["step_seconds"]) == 1
        assert method["peak_memory_bytes"] > 0 and method["parameters"] > 0
        assert method["family"] and "bound" in method["passes"]
        if method["family"] == "loss weighting":
            assert method["target_ratio"] == 1.05
            assert method["meets_target"] == (method["ratio_to_ew"] <= 1.05)
        else:
            assert method["target_status"] == "measured, no target"
            assert method["meets_target"] is None
    assert result["methods"]["stl"]["networks"] == 2
    stl, ew = result["methods"]["stl"], result["methods"]["ew"]
    assert stl["parameters"] > ew["parameters"]  # two trunks


def test_gradnorm_step_benchmark_runs_its_three_variants(tmp_path):
    out = tmp_path / "gradnorm_step.json"
    tiny = ["--rounds", "1", "--warmup", "0", "--image-size", "32", "--batch-size", "2"]
    result = _bench("gradnorm_step").main([*tiny, "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert set(result["median_step_seconds"]) == {
        "equal_weighting",
        "gradnorm",
        "gradnorm_create_graph",
    }
    assert result["paired_ratio_to_equal_weighting"]["equal_weighting"] == 1.0
    assert all(v > 0 for v in result["median_step_seconds"].values())
