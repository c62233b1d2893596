"""The training loop: deterministic per seed on CPU, checkpoints, one loop for every method."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import make_dataset
from wing.config import TrainConfig
from wing.data.dataset import WoundDataset
from wing.data.split import patient_split
from wing.evaluation.predict import predict_run
from wing.models import build_network, count_parameters
from wing.training.loop import train_run
from wing.training.losses import segmentation_loss
from wing.training.methods import method

TINY = TrainConfig(epochs=2, batch_size=4, channels=(4, 8, 16), strides=(2, 2), num_threads=1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("cohort") / "data"
    metadata = make_dataset(root, n_patients=5, visits=2, size=32)
    return root, patient_split(metadata, (0.6, 0.2, 0.2), seed=0)


def run(cohort, out: Path, name: str, seed: int = 0, config: TrainConfig = TINY) -> dict:
    root, split = cohort
    return train_run(
        method=name,
        backbone="attention_unet",
        seed=seed,
        dataset_root=root,
        split=split,
        image_size=32,
        config=config,
        out_dir=out,
    )


def test_same_seed_same_numbers(cohort, tmp_path: Path):
    run(cohort, tmp_path / "a", "gradnorm")
    run(cohort, tmp_path / "b", "gradnorm")
    run(cohort, tmp_path / "c", "gradnorm", seed=1)
    read = lambda name, file: pd.read_csv(tmp_path / name / file)  # noqa: E731
    pd.testing.assert_frame_equal(read("a", "history.csv"), read("b", "history.csv"))
    pd.testing.assert_frame_equal(read("a", "balancer_log.csv"), read("b", "balancer_log.csv"))
    assert not read("a", "history.csv").equals(read("c", "history.csv"))
    a = torch.load(tmp_path / "a/wound+tissue/last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b/wound+tissue/last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_folder_contents(cohort, tmp_path: Path):
    summary = run(cohort, tmp_path / "stl", "stl")
    for task in ("wound", "tissue"):
        folder = tmp_path / "stl" / task
        assert (folder / "best.pt").is_file() and (folder / "last.pt").is_file()
        assert (folder / "dvclive").is_dir()
    history = pd.read_csv(tmp_path / "stl" / "history.csv")
    assert set(history["task"]) == {"wound", "tissue"} and history["epoch"].max() == TINY.epochs
    assert history[["train_loss", "val_loss"]].notna().all().all()
    assert json.loads((tmp_path / "stl" / "summary.json").read_text())["method"] == "stl"

    mtl = run(cohort, tmp_path / "ew", "ew")
    assert summary["parameters"] > mtl["parameters"]  # two trunks against one
    dataset = WoundDataset(cohort[0], cohort[1]["sample_id"][:3], 32)
    for name in ("stl", "ew"):
        predicted = predict_run(tmp_path / name, dataset)
        assert predicted["wound"].shape == predicted["tissue"].shape == (3, 32, 32)
        assert predicted["tissue"].max() <= 4


def test_failed_run_leaves_no_folder(cohort, tmp_path: Path):
    with pytest.raises(KeyError, match="unknown backbone"):
        train_run(
            method="ew",
            backbone="resnet9000",
            seed=0,
            dataset_root=cohort[0],
            split=cohort[1],
            image_size=32,
            config=TINY,
            out_dir=tmp_path / "run",
        )
    assert list(tmp_path.iterdir()) == []


def test_methods():
    assert method("stl").task_groups == (("wound",), ("tissue",))
    assert method("gradnorm").task_groups == (("wound", "tissue"),)
    with pytest.raises(KeyError, match="unknown method"):
        method("mystery")


def test_trunk_is_monai_attention_unet_and_last_shared_layer_is_its_last_conv():
    from monai.networks.nets import AttentionUnet

    ours = build_network(
        "attention_unet", {"wound": 2, "tissue": 5}, channels=(4, 8, 16), strides=(2, 2)
    )
    assert isinstance(ours.trunk, AttentionUnet)
    head = 4 * 2 + 2 + 4 * 5 + 5  # two 1x1 heads on a 4-channel representation
    monai = AttentionUnet(2, 3, 4, channels=(4, 8, 16), strides=(2, 2))
    assert count_parameters(ours) == count_parameters(monai) + head
    last = ours.last_shared_parameters()
    assert [p.shape for p in last] == [(4, 4, 1, 1), (4,)]
    assert ours.last_shared_parameters("model.1.merge")[0].shape == (4, 8, 3, 3)


def test_loss_ignores_unlabelled_pixels_and_absent_tasks():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    masked = target.clone()
    masked[1] = 255
    assert segmentation_loss(logits, torch.full_like(target, 255)) is None
    partial = segmentation_loss(logits, masked)
    alone = segmentation_loss(logits[:1], target[:1])
    torch.testing.assert_close(partial, alone)  # the unlabelled image adds nothing


def test_partial_labels_train_without_nans(tmp_path: Path):
    """Wound-only samples (tissue all 255): no loss for tissue, finite everything, and the
    STL tissue network trains on the tissue-labelled samples only."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "data"
    metadata = make_dataset(root, n_patients=5, visits=2, size=32)
    split = patient_split(metadata, (0.6, 0.2, 0.2), seed=0)
    train = split[split["split"] == "train"]["sample_id"].tolist()
    for sample_id in train[1:]:  # only one training image keeps its tissue label
        Image.fromarray(np.full((32, 32), 255, np.uint8), mode="L").save(
            root / "tissue_masks" / f"{sample_id}.png"
        )
    stl = run((root, split), tmp_path / "stl", "stl")
    samples = {tuple(n["tasks"]): n["train_samples"] for n in stl["networks"]}
    assert samples == {("wound",): len(train), ("tissue",): 1}
    run((root, split), tmp_path / "gradnorm", "gradnorm")
    for name in ("stl", "gradnorm"):
        history = pd.read_csv(tmp_path / name / "history.csv")
        assert history[["train_loss", "val_loss"]].notna().all().all()
    log = pd.read_csv(tmp_path / "gradnorm" / "balancer_log.csv")
    assert np.isfinite(log["weight"]).all()
    assert (log.groupby("step")["weight"].sum().round(5) == 2.0).all()
    present = log.groupby("task")["present"].sum()
    assert present["tissue"] < present["wound"]  # most batches have no tissue label
    assert log.loc[~log["present"], "grad_norm"].isna().all()
