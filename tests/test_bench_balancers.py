"""bench/balancer_step.py runs every recipe of params.yaml and writes a well-formed JSON."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

from conftest import ROOT
from wing.config import load_config


def _bench():
    spec = importlib.util.spec_from_file_location(
        "balancer_step", ROOT / "bench" / "balancer_step.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_balancer_step_benchmark_schema(tmp_path):
    out = tmp_path / "balancer_step.json"
    tiny = ["--rounds", "1", "--warmup", "0", "--image-size", "32", "--batch-size", "2"]
    tiny += ["--channels", "4", "8", "16", "--strides", "2", "2", "--device", "cpu"]
    returned = _bench().main([*tiny, "--params", str(ROOT / "params.yaml"), "--out", str(out)])
    result = json.loads(out.read_text())
    assert result == json.loads(json.dumps(returned))
    recipes = load_config(ROOT / "params.yaml").recipes
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
