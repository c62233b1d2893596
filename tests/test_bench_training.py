"""bench/training_throughput.py runs on a tiny problem and writes a well-formed JSON whose
numbers keep their invariants. torch.compile is only checked for its skip path (a compile
limit it cannot meet): compiling takes about a minute of CPU even at this size."""

from __future__ import annotations

import json
import math

from conftest import ROOT, load_bench

METHODS = ["stl", "ew", "gradnorm"]


def positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_training_throughput_benchmark_schema_and_invariants(tmp_path):
    out = tmp_path / "training_throughput.json"
    tiny = ["--rounds", "1", "--warmup", "0", "--image-size", "32", "--batch-size", "2"]
    tiny += ["--channels", "4", "8", "16", "--strides", "2", "2", "--threads", "1"]
    tiny += ["--device", "cpu", "--patients", "4", "--determinism-steps", "2"]
    tiny += ["--methods", *METHODS, "--speed-options", "channels_last", "compile"]
    tiny += ["--compile-limit", "0.001"]
    module = load_bench("training_throughput")
    returned = module.main([*tiny, "--params", str(ROOT / "params.yaml"), "--out", str(out)])
    result = json.loads(out.read_text())
    assert result == json.loads(json.dumps(returned))
    assert (result["rounds"], result["image_size"], result["batch_size"]) == (1, 32, 2)
    assert result["threads"] == 1 and result["device"] == "cpu"
    assert result["backbones"]["attention_unet"]["channels"] == [4, 8, 16]
    assert result["data"]["train_samples"] > 0 and result["data"]["steps_per_epoch"] >= 1
    assert positive(result["loader_fetch"]["median_seconds"])

    rows = {(row["backbone"], row["method"]): row for row in result["rows"]}
    assert set(rows) == {("attention_unet", m) for m in METHODS} and len(rows) == 3
    for key, row in rows.items():
        for name in ("median_end_to_end_seconds", "median_model_only_seconds", "loader_ratio"):
            assert positive(row[name]), (key, name)
        assert len(row["end_to_end_seconds"]) == len(row["model_only_seconds"]) == 1
        assert row["images_per_second"] == 2 / row["median_end_to_end_seconds"]
        assert row["loader_target_met"] == (row["loader_ratio"] <= 1.10)
        assert row["peak_memory_bytes"] >= row["state_memory_bytes"] > 0, key
        assert row["networks"] == (2 if row["method"] == "stl" else 1)
    stl, ew = rows["attention_unet", "stl"], rows["attention_unet", "ew"]
    assert rows["attention_unet", "gradnorm"]["parameters"] == ew["parameters"]

    comparisons = {c["method"]: c for c in result["mtl_vs_stl"]}
    assert set(comparisons) == {"ew", "gradnorm"}
    for method, c in comparisons.items():
        assert (
            c["parameter_ratio"]
            == rows["attention_unet", method]["parameters"] / (stl["parameters"])
        )
        # two trunks and the same two heads: a little over half
        assert 0.5 <= c["parameter_ratio"] < 0.51 and c["parameter_target_met"] is True
        assert positive(c["time_ratio"]) and positive(c["model_only_time_ratio"])
        assert c["time_target_met"] == (c["time_ratio"] <= 0.6)
        assert c["issue_states"] == {"time_ratio": 0.55, "parameter_ratio": 0.50}

    speed = {s["option"]: s for s in result["speed_options"]}
    assert set(speed) == {"channels_last", "compile"}
    channels_last = speed["channels_last"]
    assert channels_last["status"] == "measured" and positive(channels_last["ratio_to_eager"])
    check = channels_last["determinism"]
    assert isinstance(check["reproducible"], bool) and check["reproducible"]
    assert isinstance(check["identical_to_eager"], bool)
    assert channels_last["eager_reproducible"] is True
    assert set(check["losses"]) == {"wound", "tissue"}
    assert check["identical_to_eager"] == (check["max_abs_loss_difference_to_eager"] == 0)
    compiled = speed["compile"]
    assert compiled["status"] == "skipped" and "--compile-limit" in compiled["reason"]
    assert compiled["ratio_to_eager"] is None and compiled["determinism"] is None

    table = module.format_table(result)
    assert "WING-MTL" in table and "skipped" in table
    assert len(table.splitlines()) == (2 + 3) + (1 + 2 + 2) + (1 + 2 + 2)
