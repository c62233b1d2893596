"""Which optional parts of the manuscript this run can fill, and what it says where it cannot.

A part (``paper/parts/<name>.md``: the method zoo, the backbones, the seed architectures,
real data, external validation, LUTSeg's visits) is included only when the run produced its
outputs. Otherwise the manuscript says, in a generated sentence, that it was not assessed on
this profile, why, and the command that assesses it: the command is built from the profile's
declared train matrix in ``params.yaml`` (``profiles.NAME.matrix``), so it is never typed.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from wing.config import Config
from wing.report import REAL_SOURCES

PARTS = ("zoo", "backbones", "architectures", "real_data", "external", "lutseg")
# The profile of params.yaml that assesses each part the default run does not.
PART_PROFILES = {
    "zoo": "zoo",
    "backbones": "backbones",
    "architectures": "architectures",
    "real_data": "dfutissue",
}
# The seed-architecture recipes are judged beside the method zoo, not in it.
PLAIN_BALANCERS = ("ew", "gradnorm")


def experiment_command(params: Mapping, profile: str) -> str:
    """``dvc exp run -S profile=NAME`` with every train axis the profile declares (dvc.yaml
    reads the matrix from the top level, so a profile's matrix is set on the command line)."""
    matrix = (params.get("profiles", {}).get(profile) or {}).get("matrix") or {}
    flags = [f"-S profile={profile}"]
    for axis, values in matrix.items():
        flags.append(f"-S 'train.{axis}=[{','.join(str(v) for v in values)}]'")
    return "dvc exp run " + " ".join(flags)


def advanced_methods(config: Config) -> list[str]:
    """The methods run that are neither STL, EW nor GradNorm on the hard-sharing network."""
    return [
        m
        for m in config.train.methods
        if not config.recipes[m].per_task_networks
        and config.recipes[m].architecture == "hard_sharing"
        and config.recipes[m].balancer not in PLAIN_BALANCERS
    ]


def seed_architectures(config: Config) -> list[str]:
    """The methods run on another architecture than hard sharing."""
    return [m for m in config.train.methods if config.recipes[m].architecture != "hard_sharing"]


def _assessed_status(status: pd.DataFrame, key: str, value: str) -> tuple[bool, str]:
    """Whether a status table (external, LUTSeg) says the row ``key == value`` was assessed,
    and its reason otherwise."""
    rows = status[status[key] == value] if len(status) and key in status else status.iloc[0:0]
    if len(rows) and (rows["status"] == "assessed").all():
        return True, ""
    reason = str(rows["reason"].iloc[0]) if len(rows) and "reason" in rows else "not run"
    return False, reason


def part_reasons(
    config: Config, external_status: pd.DataFrame, lutseg_status: pd.DataFrame
) -> dict[str, str]:
    """Each part -> "" when this run assessed it, else why not (in words)."""
    reasons = {
        "zoo": "" if advanced_methods(config) else "no advanced multi-task method was trained",
        "backbones": ""
        if len(config.train.backbones) >= 2
        else f"only one backbone ({config.train.backbones[0]}) was trained",
        "architectures": "" if seed_architectures(config) else "no seed architecture was trained",
        "real_data": ""
        if config.data.source in REAL_SOURCES
        else f"the data are the `{config.data.source}` source, not real photographs "
        f"({' or '.join(REAL_SOURCES)})",
    }
    datasets = list(config.evaluate.external)
    if not datasets:
        reasons["external"] = "`evaluate.external` names no dataset"
    else:
        assessed, reason = _assessed_status(external_status, "dataset", datasets[0])
        reasons["external"] = "" if assessed else reason
    assessed, reason = _assessed_status(lutseg_status, "part", "annotations")
    reasons["lutseg"] = "" if assessed else reason
    return reasons


def command_values(params: Mapping) -> dict[str, str]:
    """``command_<part>``: the command that assesses each part (inline code)."""
    return {
        f"command_{part}": f"`{experiment_command(params, profile)}`"
        for part, profile in PART_PROFILES.items()
    }


def not_assessed_text(part: str, reason: str, profile: str, params: Mapping) -> str:
    """The generated paragraph that stands in for a part the run did not assess."""
    text = f"*Not assessed in this run (profile `{profile}`): {reason}.*"
    if part in PART_PROFILES:
        text += f" Run `{experiment_command(params, PART_PROFILES[part])}` to assess it."
    elif part == "external":
        text += " Point `data.raw.lutseg` at LUTSeg's photographs to assess it."
    elif part == "lutseg":
        text += " Point `data.raw.lutseg_annotations` at LUTSeg's annotations to assess it."
    return text + "\n"
