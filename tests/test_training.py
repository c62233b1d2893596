"""The training loop: deterministic per seed on CPU, one loop and one schedule for every
method (step budget, per-task best checkpoints, early stopping, L_i(0) before step one)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import make_dataset
from wing.balancing import GradNorm
from wing.config import TrainConfig
from wing.data.dataset import WoundDataset
from wing.data.split import patient_split
from wing.evaluation.predict import predict_run
from wing.models import build_network
from wing.training import loop
from wing.training.determinism import seed_everything
from wing.training.loop import train_run
from wing.training.losses import segmentation_loss
from wing.training.methods import DEFAULT_RECIPES
from wing.training.sampler import TaskBatchSampler

TINY = TrainConfig(epochs=2, batch_size=4, channels=(4, 8, 16), strides=(2, 2), num_threads=1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("cohort") / "data"
    metadata = make_dataset(root, n_patients=5, visits=2, size=32)
    return root, patient_split(metadata, (0.6, 0.2, 0.2), seed=0)


def run(
    cohort, out: Path, name: str, seed: int = 0, config: TrainConfig = TINY, recipe=None
) -> dict:
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
        recipe=recipe,
    )


def params_recipe(name: str):
    """A recipe as params.yaml writes it."""
    from wing.config import load_config

    return load_config(Path(__file__).parents[1] / "params.yaml").recipes[name]


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
        assert sorted(p.name for p in folder.glob("*.pt")) == [f"best_{task}.pt", "last.pt"]
        assert (folder / "dvclive").is_dir()
    history = pd.read_csv(tmp_path / "stl" / "history.csv")
    assert set(history["task"]) == {"wound", "tissue"} and history["epoch"].max() == TINY.epochs
    assert history[["train_loss", "val_loss"]].notna().all().all()
    assert json.loads((tmp_path / "stl" / "summary.json").read_text())["method"] == "stl"
    network = summary["networks"][0]
    assert network["epochs_trained"] == TINY.epochs and network["stopped_early"] is False
    assert set(network["best_epochs"]) == {"wound"}
    assert network["optimizer_steps"] == TINY.epochs * network["steps_per_epoch"]

    mtl = run(cohort, tmp_path / "ew", "ew")
    assert summary["parameters"] > mtl["parameters"]  # two trunks against one
    assert sorted(p.name for p in (tmp_path / "ew/wound+tissue").glob("*.pt")) == [
        "best_tissue.pt",
        "best_wound.pt",
        "last.pt",
    ]
    dataset = WoundDataset(cohort[0], cohort[1]["sample_id"][:3], 32)
    for name in ("stl", "ew"):
        for checkpoint in ("best", "last"):
            predicted = predict_run(tmp_path / name, dataset, checkpoint=checkpoint)
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


def test_default_recipes():
    assert DEFAULT_RECIPES["stl"].task_groups == (("wound",), ("tissue",))
    assert DEFAULT_RECIPES["gradnorm"].task_groups == (("wound", "tissue"),)
    assert DEFAULT_RECIPES["gradnorm"].balancer == "gradnorm"


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


def partial_cohort(root: Path, keep_tissue: int) -> tuple[Path, pd.DataFrame, list[str]]:
    """The cohort with all but ``keep_tissue`` training images wound-only (tissue all 255)."""
    metadata = make_dataset(root, n_patients=5, visits=2, size=32)
    split = patient_split(metadata, (0.6, 0.2, 0.2), seed=0)
    train = split[split["split"] == "train"]["sample_id"].tolist()
    for sample_id in train[keep_tissue:]:
        Image.fromarray(np.full((32, 32), 255, np.uint8), mode="L").save(
            root / "tissue_masks" / f"{sample_id}.png"
        )
    return root, split, train


def test_partial_labels_train_without_nans(tmp_path: Path):
    """Wound-only samples (tissue all 255): no loss for tissue, finite everything, and the
    STL tissue network trains on the tissue-labelled samples only."""
    root, split, train = partial_cohort(tmp_path / "data", keep_tissue=1)
    off = dataclasses.replace(TINY, task_balanced_batches="off")
    stl = run((root, split), tmp_path / "stl", "stl")
    samples = {tuple(n["tasks"]): n["train_samples"] for n in stl["networks"]}
    assert samples == {("wound",): len(train), ("tissue",): 1}
    run((root, split), tmp_path / "gradnorm", "gradnorm", config=off)
    for name in ("stl", "gradnorm"):
        history = pd.read_csv(tmp_path / name / "history.csv")
        assert history[["train_loss", "val_loss"]].notna().all().all()
    log = pd.read_csv(tmp_path / "gradnorm" / "balancer_log.csv")
    assert np.isfinite(log["weight"]).all()
    assert (log.groupby("step")["weight"].sum().round(5) == 2.0).all()
    present = log.groupby("task")["present"].sum()
    assert present["tissue"] < present["wound"]  # unbalanced: most batches lack tissue
    assert log.loc[~log["present"], "grad_norm"].isna().all()


def test_every_network_takes_the_same_optimiser_steps_with_partial_labels(tmp_path: Path):
    """Half the training images are wound-only: the STL tissue network cycles its smaller
    set and takes as many steps as the shared network; shared batches hold both tasks."""
    root, split, train = partial_cohort(tmp_path / "data", keep_tissue=3)
    config = dataclasses.replace(TINY, batch_size=2)
    stl = run((root, split), tmp_path / "stl", "stl", config=config)
    ew = run((root, split), tmp_path / "ew", "ew", config=config)
    networks = {tuple(n["tasks"]): n for n in stl["networks"] + ew["networks"]}
    per_epoch = math.ceil(len(train) / config.batch_size)
    assert {n["steps_per_epoch"] for n in networks.values()} == {per_epoch}
    assert {n["optimizer_steps"] for n in networks.values()} == {per_epoch * config.epochs}
    assert stl["optimizer_steps"] == ew["optimizer_steps"] == per_epoch * config.epochs
    assert (
        networks[("tissue",)]["train_samples"]
        == 3
        < networks[("wound", "tissue")]["train_samples"]
        == len(train)
    )
    # auto: on for the shared network (partial labels), off for the fully labelled STL sets.
    assert {t: n["task_balanced_batches"] for t, n in networks.items()} == {
        ("wound",): False,
        ("tissue",): False,
        ("wound", "tissue"): True,
    }
    log = pd.read_csv(tmp_path / "ew" / "balancer_log.csv")
    assert log["present"].all()  # every shared batch held a sample of each task
    assert log["step"].nunique() == per_epoch * config.epochs


def scripted_validation(monkeypatch, script: dict[str, list[float]]) -> None:
    """validation_losses returns the scripted losses of each epoch in turn."""
    epochs = iter(range(len(next(iter(script.values())))))

    def fake(network, loader, device, task_losses):
        epoch = next(epochs)
        return {task: values[epoch] for task, values in script.items()}

    monkeypatch.setattr(loop, "validation_losses", fake)


def test_one_best_checkpoint_per_task_at_its_own_minimum(cohort, tmp_path: Path, monkeypatch):
    script = {"wound": [1.0, 0.5, 0.7, 0.9], "tissue": [2.0, 1.9, 1.8, 1.85]}
    scripted_validation(monkeypatch, script)
    summary = run(cohort, tmp_path / "ew", "ew", config=dataclasses.replace(TINY, epochs=4))
    folder = tmp_path / "ew" / "wound+tissue"
    history = pd.read_csv(tmp_path / "ew" / "history.csv")
    minima = history.loc[history.groupby("task")["val_loss"].idxmin()].set_index("task")["epoch"]
    assert minima.to_dict() == {"wound": 2, "tissue": 3}
    for task in ("wound", "tissue"):
        checkpoint = torch.load(folder / f"best_{task}.pt", weights_only=False)
        assert checkpoint["epoch"] == minima[task]
        assert {"state_dict", "tasks", "task_classes", "backbone", "image_size"} <= set(checkpoint)
    assert torch.load(folder / "last.pt", weights_only=False)["epoch"] == 4
    network = summary["networks"][0]
    assert network["best_epochs"] == {"wound": 2, "tissue": 3}
    assert not network["stopped_early"] and network["epochs_trained"] == 4


@pytest.mark.parametrize(
    ("patience", "trained"),
    [(0, 7), (1, 4), (2, 5), (3, 6)],
)
def test_early_stopping_when_no_task_improves_for_patience_epochs(
    cohort, tmp_path: Path, monkeypatch, patience: int, trained: int
):
    # New minima: epoch 1 (both), 2 (wound), 3 (tissue); none after; epochs 4 and 5 tie.
    script = {
        "wound": [1.0, 0.8, 0.9, 0.8, 0.95, 0.9, 0.9],
        "tissue": [2.0, 2.1, 1.5, 1.6, 1.5, 1.7, 1.8],
    }
    scripted_validation(monkeypatch, script)
    config = dataclasses.replace(TINY, epochs=7, patience=patience, steps_per_epoch=1)
    summary = run(cohort, tmp_path / "ew", "ew", config=config)
    network = summary["networks"][0]
    assert network["epochs_trained"] == trained
    assert network["stopped_early"] is (trained < 7)
    assert network["best_epochs"] == {"wound": 2, "tissue": 3}
    assert network["optimizer_steps"] == trained == summary["optimizer_steps"]
    assert pd.read_csv(tmp_path / "ew" / "history.csv")["epoch"].max() == trained
    last = torch.load(tmp_path / "ew/wound+tissue/last.pt", weights_only=False)
    assert last["epoch"] == trained


def test_gradnorm_initial_losses_are_set_before_the_first_step(tmp_path: Path, monkeypatch):
    """L_i(0) = the task's mean loss over the first fixed (unshuffled, unaugmented) batches
    of its labelled samples, in place before the first step even when that step's batch
    holds no tissue label."""
    root, split, train = partial_cohort(tmp_path / "data", keep_tissue=3)
    config = dataclasses.replace(
        TINY, batch_size=2, initial_loss_batches=1, task_balanced_batches="off"
    )
    # A seed whose first (unbalanced) batch has no tissue-labelled image (the first three).
    seeds = [
        seed
        for seed in range(20)
        if min(next(iter(TaskBatchSampler(torch.ones(len(train), 1), 2, 1, seed, False)))) >= 3
    ]
    seed = seeds[0]

    calls = []
    original = GradNorm.backward

    def spy(self, losses, *args, **kwargs):
        calls.append((set(losses), dict(self.initial_losses)))
        return original(self, losses, *args, **kwargs)

    monkeypatch.setattr(GradNorm, "backward", spy)
    summary = run((root, split), tmp_path / "gradnorm", "gradnorm", seed=seed, config=config)
    assert calls[0][0] == {"wound"}  # the first step saw no tissue label ...
    initial = calls[0][1]
    assert set(initial) == {"wound", "tissue"}  # ... yet both L_i(0) were set
    assert all(c[1] == initial for c in calls)  # and never changed
    assert summary["networks"][0]["initial_losses"] == pytest.approx(initial)

    # Independently: the freshly initialised network, first batch of each task's samples.
    seed_everything(seed, config.num_threads)
    network = build_network(
        "attention_unet",
        {"wound": 2, "tissue": 5},
        backbone_options={
            "channels": config.channels,
            "strides": config.strides,
            "dropout": config.dropout,
        },
    ).eval()
    dataset = WoundDataset(root, train, 32)
    with torch.no_grad():
        for task, samples in (("wound", [0, 1]), ("tissue", [0, 1])):
            _, logits = network(dataset.images[samples].float() / 255)
            target = (dataset.wounds if task == "wound" else dataset.tissues)[samples]
            want = float(segmentation_loss(logits[task], target))
            assert initial[task] == pytest.approx(want, rel=1e-5)


def test_every_recipe_of_params_yaml_trains_and_resumes_its_balancer(cohort, tmp_path: Path):
    """Every recipe in params.yaml trains on the tiny cohort (partial labels included) through
    the one loop; its checkpoint holds the balancer's state, which a fresh balancer loads."""
    from wing.config import load_config

    recipes = load_config(Path(__file__).parents[1] / "params.yaml").recipes
    one_epoch = dataclasses.replace(TINY, epochs=1)
    for name, recipe in recipes.items():
        summary = run(cohort, tmp_path / name, name, config=one_epoch, recipe=recipe)
        log = pd.read_csv(tmp_path / name / "balancer_log.csv")
        assert log["weight"].notna().all(), name
        for tasks in recipe.task_groups:
            checkpoint = torch.load(
                tmp_path / name / "+".join(tasks) / "last.pt", weights_only=False
            )
            assert checkpoint["recipe"] == name and checkpoint["balancer"] == recipe.balancer
            fresh = recipe.build_balancer(tasks)
            fresh.load_state_dict(checkpoint["balancer_state"])
        assert summary["recipe"]["name"] == name


@pytest.mark.parametrize(
    ("backbone", "options"),
    [
        ("resnet_unet", {"decoder_channels": [16, 16, 8, 8, 8]}),
        ("segformer", {"decoder_segmentation_channels": 16}),
    ],
)
@pytest.mark.parametrize("method", ["gradnorm", "ctan", "mt_ids", "resformer"])
def test_every_backbone_and_architecture_trains_through_the_loop_and_evaluates(
    cohort, tmp_path: Path, backbone: str, options: dict, method: str
):
    """The loop, the checkpoint and the evaluator on each non-default backbone and each seed
    architecture (one epoch of the tiny cohort): the checkpoint names what to rebuild, with
    which options, and the evaluator rebuilds a network that predicts every task."""
    from wing.config import load_config
    from wing.evaluation.predict import load_network

    recipe = load_config(Path(__file__).parents[1] / "params.yaml").recipes[method]
    root, split = cohort
    out = tmp_path / "run"
    train_run(
        method=method,
        backbone=backbone,
        seed=0,
        dataset_root=root,
        split=split,
        image_size=32,
        config=dataclasses.replace(TINY, epochs=1),
        out_dir=out,
        recipe=recipe,
        backbone_options=options,
    )
    path = out / "+".join(recipe.task_groups[0]) / "last.pt"
    network, checkpoint = load_network(path)
    assert (checkpoint["backbone"], checkpoint["architecture"]) == (backbone, recipe.architecture)
    assert checkpoint["backbone_options"] == options
    assert checkpoint["architecture_options"] == dict(recipe.architecture_options)
    image = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits = network(image)[1]
    assert logits["wound"].shape == (2, 2, 32, 32) and torch.isfinite(logits["tissue"]).all()


def test_an_auxiliary_image_task_trains_beside_the_compared_tasks(cohort, tmp_path: Path):
    """ResFormer's recipe: the image-level task has its head, its loss and its best
    checkpoint; evaluation predicts label maps for the segmentation tasks and probabilities
    for the image task; the compared tasks alone decide early stopping."""
    from wing.evaluation.predict import predict_probabilities

    root, split = cohort
    out = tmp_path / "resformer"
    epochs = dataclasses.replace(TINY, epochs=2)
    summary = run(cohort, out, "resformer", config=epochs, recipe=params_recipe("resformer"))
    folder = out / "wound+tissue+tissue_presence"
    assert {p.name for p in folder.glob("best_*.pt")} == {
        "best_wound.pt",
        "best_tissue.pt",
        "best_tissue_presence.pt",
    }
    history = pd.read_csv(out / "history.csv")
    assert set(history["task"]) == {"wound", "tissue", "tissue_presence"}
    assert summary["networks"][0]["initial_losses"].keys() == {"wound", "tissue", "tissue_presence"}
    test_ids = split.loc[split["split"] == "test", "sample_id"].tolist()
    dataset = WoundDataset(root, test_ids, 32)
    maps = predict_run(out, dataset)
    assert set(maps) == {"wound", "tissue"}
    probability = predict_probabilities(out, "tissue_presence", dataset)
    assert probability.shape[0] == len(test_ids) and ((probability >= 0) & (probability <= 1)).all()


def test_only_the_compared_tasks_extend_training(cohort, tmp_path: Path, monkeypatch):
    """An auxiliary task that keeps improving does not keep a network training."""
    script = {
        "wound": [1.0, 1.1, 1.2, 1.3, 1.4],
        "tissue": [2.0, 2.1, 2.2, 2.3, 2.4],
        "tissue_presence": [0.9, 0.8, 0.7, 0.6, 0.5],
    }
    scripted_validation(monkeypatch, script)
    config = dataclasses.replace(TINY, epochs=5, patience=2)
    summary = run(
        cohort, tmp_path / "run", "resformer", config=config, recipe=params_recipe("resformer")
    )
    network = summary["networks"][0]
    assert network["epochs_trained"] == 3 and network["stopped_early"]
    assert network["best_epochs"] == {"wound": 1, "tissue": 1, "tissue_presence": 3}
