"""bench/pipeline_cost.py: which stages' outputs a forced run changed, read from two dvc.lock
texts (the byte audit), and the table it records."""

from __future__ import annotations

from conftest import load_bench

LOCK = """schema: '2.0'
stages:
  prepare:
    cmd: x
    outs:
    - path: data/prepared/dataset
      md5: aaa.dir
    - path: data/prepared/split.csv
      md5: bbb
  report:
    cmd: y
    outs:
    - path: results/report.html
      md5: ccc
"""


def test_identical_locks_change_nothing():
    module = load_bench("pipeline_cost")
    assert module.changed_outputs(LOCK, LOCK) == {}
    assert module.out_hashes(LOCK)["prepare"]["data/prepared/dataset"] == "aaa.dir"


def test_a_changed_hash_and_a_new_stage_are_reported():
    module = load_bench("pipeline_cost")
    after = LOCK.replace("md5: ccc", "md5: ddd") + (
        "  paper:\n    cmd: z\n    outs:\n    - path: results/paper\n      md5: eee.dir\n"
    )
    assert module.changed_outputs(LOCK, after) == {
        "report": ["results/report.html"],
        "paper": ["results/paper"],
    }
    assert module.changed_outputs("", LOCK) == {
        "prepare": ["data/prepared/dataset", "data/prepared/split.csv"],
        "report": ["results/report.html"],
    }


def test_table_says_byte_identical_only_when_nothing_changed():
    module = load_bench("pipeline_cost")
    result = {
        "profile": "quick", "stages_run": 12, "forced_repro_seconds": 861.0,
        "noop_repro_seconds": 4.2, "changed_outputs": {},
    }  # fmt: skip
    table = module.format_table(result)
    assert "14.3 min" in table and "4.2 s" in table and "none (byte-identical)" in table
    result["changed_outputs"] = {"report": ["results/report.html"]}
    assert "| report |" in module.format_table(result)
