"""bench/architecture_cost.py runs every backbone x architecture on a tiny problem and writes
a well-formed JSON whose numbers keep their invariants (resnet_unet, a ResNet-34 built five
times over, is left to the recorded run: it would cost this test most of its time)."""

from __future__ import annotations

import json
import math

from conftest import ROOT, load_bench
from wing.config import load_config

BACKBONES = ["attention_unet", "segformer"]


def test_architecture_cost_benchmark_schema_and_invariants(tmp_path):
    out = tmp_path / "architecture_cost.json"
    tiny = ["--rounds", "1", "--warmup", "0", "--image-size", "32", "--batch-size", "2"]
    tiny += ["--channels", "4", "8", "16", "--strides", "2", "2", "--threads", "1"]
    tiny += ["--device", "cpu", "--backbones", *BACKBONES]
    module = load_bench("architecture_cost")
    returned = module.main([*tiny, "--params", str(ROOT / "params.yaml"), "--out", str(out)])
    result = json.loads(out.read_text())
    assert result == json.loads(json.dumps(returned))

    recipes = load_config(ROOT / "params.yaml").recipes
    used = {r.architecture for r in recipes.values() if not r.per_task_networks}
    assert {"ctan", "mt_ids", "resformer"} <= used  # the seed architectures are measured
    architectures = ["hard_sharing", *sorted(used - {"hard_sharing"})]
    assert set(result["architectures"]) == set(architectures)
    assert result["architectures"]["ctan"] == dict(recipes["ctan"].architecture_options)
    rows = {(row["backbone"], row["architecture"]): row for row in result["rows"]}
    assert set(rows) == {(b, a) for b in BACKBONES for a in [*architectures, "stl"]}
    assert len(rows) == len(result["rows"])
    assert (result["rounds"], result["image_size"], result["device"]) == (1, 32, "cpu")
    assert result["threads"] == 1 and result["device_name"] and result["torch"]
    assert all(len(result["load_average"][when]) == 3 for when in ("start", "end"))
    assert result["backbones"]["attention_unet"]["channels"] == [4, 8, 16]

    for (backbone, architecture), row in rows.items():
        where = f"{backbone}/{architecture}"
        assert row["shared_parameters"] + row["task_specific_parameters"] == row["parameters"]
        assert sum(row["task_parameters"].values()) == row["task_specific_parameters"], where
        aux = set(recipes["resformer"].auxiliary_tasks) if architecture == "resformer" else set()
        assert set(row["task_parameters"]) == {"wound", "tissue", *aux}, where
        assert row["macs"] > 0 and isinstance(row["macs"], int), where
        assert row["median_step_seconds"] > 0 and len(row["step_seconds"]) == 1, where
        assert math.isfinite(row["step_ratio_to_hard_sharing"]), where
        assert row["peak_memory_bytes"] >= row["state_memory_bytes"] > 0, where
        assert row["networks"] == (2 if architecture == "stl" else 1), where

    for backbone in BACKBONES:
        hard = rows[backbone, "hard_sharing"]
        assert hard["step_ratio_to_hard_sharing"] == 1.0
        assert hard["step_ratio_quartiles"] == [1.0, 1.0]
        assert hard["macs_ratio_to_hard_sharing"] == 1.0
        assert hard["peak_memory_ratio_to_hard_sharing"] == 1.0
        assert hard["parameter_ratio_to_hard_sharing"] == 1.0
        assert hard["peak_memory_bytes_one_network_at_a_time"] is None
        # the pair: two trunks and the same two heads (hard sharing's heads once each)
        stl = rows[backbone, "stl"]
        assert stl["parameters"] == 2 * hard["parameters"] - hard["task_specific_parameters"]
        assert 1.9 < stl["parameter_ratio_to_hard_sharing"] <= 2.0
        assert stl["shared_parameters"] == 0
        assert 1.5 < stl["macs_ratio_to_hard_sharing"] <= 2.0
        assert stl["peak_memory_bytes_one_network_at_a_time"] <= stl["peak_memory_bytes"]
        assert "tissue_presence" in rows[backbone, "resformer"]["tasks"]  # its image head
        for architecture in ("ctan", "mt_ids", "resformer"):
            assert rows[backbone, architecture]["parameters"] > hard["parameters"]
            assert rows[backbone, architecture]["macs"] > hard["macs"]

    table = module.format_table(result)
    assert len(table.splitlines()) == 2 + len(rows) and "STL pair" in table
