"""The network contract (wing.models.base), checked for every registered backbone and
architecture: shapes, gradient flow, the parameter split, the representation as a cut,
GradNorm's exact gradients on each architecture's last shared layer, and the checkpoint."""

from __future__ import annotations

import itertools

import pytest
import torch
from monai.networks.nets import AttentionUnet

from conftest import cut_gradients
from wing.balancing import GradNorm, Step
from wing.evaluation.predict import load_network
from wing.models import ARCHITECTURES, BACKBONES, build_network, count_parameters
from wing.training.losses import segmentation_loss

CLASSES = {"wound": 2, "tissue": 5}
# The smallest options of each backbone, and the image side it takes.
TINY = {
    "attention_unet": ({"channels": (4, 8, 16), "strides": (2, 2)}, 32),
    "resnet_unet": ({"decoder_channels": (16, 16, 8, 8, 8)}, 64),
    "segformer": ({"decoder_segmentation_channels": 16}, 64),
}
PAIRS = list(itertools.product(BACKBONES.names(), ARCHITECTURES.names()))


def test_every_registered_backbone_has_tiny_test_options():
    assert set(TINY) == set(BACKBONES.names())


def problem(backbone: str, architecture: str, seed: int = 0):
    options, side = TINY[backbone]
    torch.manual_seed(seed)
    network = build_network(backbone, CLASSES, architecture, backbone_options=options).train()
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, side, side, generator=g)
    targets = {
        task: torch.randint(0, n, (2, side, side), generator=g) for task, n in CLASSES.items()
    }
    return network, image, targets


def losses_of(network, image, targets):
    representation, logits = network(image)
    return representation, {t: segmentation_loss(logits[t], targets[t]) for t in CLASSES}


@pytest.mark.parametrize(("backbone", "architecture"), PAIRS)
def test_shapes_gradient_flow_and_parameter_split(backbone: str, architecture: str):
    network, image, targets = problem(backbone, architecture)
    representation, logits = network(image)
    side = image.shape[-1]
    assert {t: tuple(v.shape) for t, v in logits.items()} == {
        t: (2, n, side, side) for t, n in CLASSES.items()
    }
    shared = network.shared_parameters()
    groups = network.task_parameters()
    ids = [id(p) for p in shared] + [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in network.parameters()}
    assert set(groups) == set(CLASSES) and all(groups.values())
    last = {id(p) for p in network.last_shared_parameters()}
    assert last and last <= {id(p) for p in shared}
    # Gradient flow: every parameter is reached by the sum of the losses ...
    _, losses = losses_of(network, image, targets)
    sum(losses.values()).backward()
    dead = [n for n, p in network.named_parameters() if p.grad is None or not p.grad.any()]
    assert not dead, dead
    # ... and a task's own parameters by no other task's loss.
    for task in CLASSES:
        network.zero_grad(set_to_none=True)
        _, losses = losses_of(network, image, targets)
        losses[task].backward()
        for other, group in groups.items():
            if other != task:
                assert all(p.grad is None or not p.grad.any() for p in group), (task, other)


@pytest.mark.parametrize(("backbone", "architecture"), PAIRS)
def test_representation_is_a_cut_between_shared_and_task_parameters(backbone, architecture):
    """Each task's loss back-propagated to the representation, then from there into the
    shared parameters, gives exactly the gradients of a plain backward."""
    network, image, targets = problem(backbone, architecture, seed=1)
    network.eval()  # the same function for both passes (BatchNorm statistics frozen)
    shared = network.shared_parameters()
    for task in CLASSES:
        representation, losses = losses_of(network, image, targets)
        plain, through = cut_gradients(shared, representation, losses[task])
        for a, b in zip(through, plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("backbone", "architecture"), PAIRS)
def test_gradnorm_gradients_are_exact_on_each_architectures_last_shared_layer(
    backbone, architecture
):
    network, image, targets = problem(backbone, architecture, seed=2)
    network.eval()
    balancer = GradNorm(tuple(CLASSES), alpha=1.5, learning_rate=0.1)
    balancer.start({"wound": 1.2, "tissue": 2.5})
    with torch.no_grad():
        balancer.task_weights.copy_(torch.tensor([0.4, 1.6]))
    representation, losses = losses_of(network, image, targets)
    step = Step(
        network.shared_parameters(),
        network.task_parameters(),
        network.last_shared_parameters(),
        representation,
    )
    balancer.backward(losses, step)
    got = {name: p.grad.clone() for name, p in network.named_parameters()}
    norms = balancer.last_grad_norms

    network.zero_grad(set_to_none=True)
    _, losses = losses_of(network, image, targets)
    (0.4 * losses["wound"] + 1.6 * losses["tissue"]).backward()
    for name, p in network.named_parameters():
        torch.testing.assert_close(got[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    # G_i = w_i ||grad_W L_i|| on W, the last shared layer.
    _, losses = losses_of(network, image, targets)
    for weight, task in zip((0.4, 1.6), CLASSES, strict=True):
        grads = torch.autograd.grad(
            losses[task], network.last_shared_parameters(), retain_graph=True, allow_unused=True
        )
        norm = torch.sqrt(sum((g**2).sum() for g in grads if g is not None))
        assert norms[task] == pytest.approx(weight * float(norm), rel=1e-4)


@pytest.mark.parametrize(("backbone", "architecture"), PAIRS)
def test_checkpoint_rebuilds_the_same_network(backbone, architecture, tmp_path):
    network, image, _ = problem(backbone, architecture, seed=3)
    options, _ = TINY[backbone]
    path = tmp_path / "last.pt"
    torch.save(
        {
            "state_dict": network.state_dict(),
            "backbone": backbone,
            "backbone_options": options,
            "architecture": architecture,
            "architecture_options": {},
            "task_classes": CLASSES,
        },
        path,
    )
    torch.manual_seed(99)  # a different initialisation, overwritten by the checkpoint
    rebuilt, checkpoint = load_network(path)
    assert checkpoint["architecture"] == architecture
    assert type(rebuilt) is type(network)
    network.eval()
    with torch.no_grad():
        want = network(image)[1]
        got = rebuilt(image)[1]
    for task in CLASSES:
        torch.testing.assert_close(got[task], want[task], rtol=0, atol=0)


def test_attention_unet_computes_exactly_what_monais_attention_unet_computes():
    """The encoder / decoder seam re-wires MONAI's own blocks: same initial weights (the
    same construction from the same seed), same parameter count, the same output bit for bit
    in training mode (BatchNorm) and in evaluation mode."""
    options = {"channels": (4, 8, 16, 32), "strides": (2, 2, 2)}
    torch.manual_seed(0)
    monai = AttentionUnet(2, 3, 4, channels=options["channels"], strides=options["strides"])
    torch.manual_seed(0)
    ours = build_network("attention_unet", {"wound": 2}, backbone_options=options)
    assert count_parameters(ours) == count_parameters(monai) + 4 * 2 + 2  # + one 1x1 head
    image = torch.rand(2, 3, 32, 32)
    for train in (True, False):
        monai.train(train)
        ours.train(train)
        representation, _ = ours(image)
        assert torch.equal(representation, monai(image))
    last = ours.last_shared_parameters()
    assert [p.shape for p in last] == [(4, 4, 1, 1), (4,)]  # the final 1x1 convolution
    top_merge = ours.last_shared_parameters("decoder.stages.2.merge")
    assert top_merge[0].shape == (4, 8, 3, 3)


def test_unknown_names_fail_with_the_registered_ones():
    with pytest.raises(KeyError, match="attention_unet"):
        build_network("resnet9000", CLASSES)
    with pytest.raises(KeyError, match="hard_sharing"):
        build_network("attention_unet", CLASSES, architecture="nope")


def test_a_checkpoint_does_not_reread_the_pretrained_encoder_file(tmp_path):
    """The trained weights are in the checkpoint: evaluation works after the encoder file
    used to initialise training is gone."""
    options, side = TINY["segformer"]
    encoder_file = tmp_path / "mit_b0.pt"
    donor = BACKBONES.get("segformer")(**options)
    torch.save(donor.encoder.mit.state_dict(), encoder_file)
    options = {**options, "pretrained_path": str(encoder_file)}
    network = build_network("segformer", CLASSES, backbone_options=options).eval()
    path = tmp_path / "best.pt"
    torch.save(
        {
            "state_dict": network.state_dict(),
            "backbone": "segformer",
            "backbone_options": options,
            "architecture": "hard_sharing",
            "architecture_options": {},
            "task_classes": CLASSES,
        },
        path,
    )
    encoder_file.unlink()
    rebuilt, _ = load_network(path)
    image = torch.rand(1, 3, side, side)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(image)[1]["wound"], network(image)[1]["wound"])
