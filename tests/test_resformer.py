"""ResFormer as an architecture (wing.models.resformer): shapes for segmentation and
image-level tasks at several image sides, the parameter split and the cut with an image task,
GradNorm's W reached by every task, the DFE variants, the windows fitted to any feature size,
option checks and determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import cut_gradients
from wing.balancing import GradNorm, Step
from wing.models import build_network
from wing.models.resformer import DilatedFeatureEnhancement, FittedWindowBlock
from wing.training.losses import segmentation_loss

SEGMENTATION = {"wound": 2, "tissue": 5}
WITH_IMAGE_TASK = {"wound": 2, "tissue": 5, "infection": 3}  # infection: image-level
ONE_SEGMENTATION_TASK = {"wound": 2, "infection": 3}
TINY = {
    "attention_unet": {"channels": (4, 8, 16), "strides": (2, 2)},  # features 4, 8, 16 wide
    "resnet_unet": {"decoder_channels": (16, 16, 8, 8, 8)},
}


def network_of(classes=WITH_IMAGE_TASK, backbone="attention_unet", seed=0, **options):
    if "infection" in classes:
        options.setdefault("image_tasks", ("infection",))
    torch.manual_seed(seed)
    return build_network(
        backbone,
        classes,
        architecture="resformer",
        backbone_options=TINY[backbone],
        architecture_options=options,
    )


def batch(classes=WITH_IMAGE_TASK, side=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, side, side, generator=g)
    targets = {
        t: torch.randint(0, 2, (2, n), generator=g).float()
        if t == "infection"
        else torch.randint(0, n, (2, side, side), generator=g)
        for t, n in classes.items()
    }
    return image, targets


def losses_of(network, image, targets):
    representation, logits = network(image)
    losses = {
        t: F.binary_cross_entropy_with_logits(logits[t], targets[t])
        if t == "infection"
        else segmentation_loss(logits[t], targets[t])
        for t in targets
    }
    return representation, losses


@pytest.mark.parametrize(
    ("backbone", "side"),
    [
        ("attention_unet", 32),
        ("attention_unet", 20),  # coarsest feature 5 x 5: padded, shifted windows
        ("attention_unet", 48),
        ("resnet_unet", 64),  # coarsest 2 x 2
        ("resnet_unet", 32),  # coarsest 1 x 1
        ("resnet_unet", 96),  # coarsest 3 x 3
    ],
)
def test_shapes_of_segmentation_and_image_level_logits_at_several_sides(backbone, side):
    network = network_of(backbone=backbone)
    image, _ = batch(side=side)
    (decoded, pooled), logits = network(image)
    assert {t: tuple(v.shape) for t, v in logits.items()} == {
        "wound": (2, 2, side, side),
        "tissue": (2, 5, side, side),
        "infection": (2, 3),
    }
    channels = network.encoder.channels
    assert tuple(pooled.shape) == (2, channels[-2] + channels[-1])
    assert decoded.shape[-2:] == (side, side)
    # without image tasks: hard sharing's representation, the decoder's output
    plain = network_of(SEGMENTATION, backbone=backbone)
    representation, logits = plain(image)
    assert isinstance(representation, torch.Tensor) and representation.shape[-2:] == (side, side)
    assert set(logits) == set(SEGMENTATION)


def reached_by(network, image, targets) -> dict[str, set[int]]:
    """For each task, the ids of the parameters its loss reaches (non-zero gradient)."""
    reached = {}
    for task in targets:
        network.zero_grad(set_to_none=True)
        _, losses = losses_of(network, image, targets)
        losses[task].backward()
        reached[task] = {
            id(p) for p in network.parameters() if p.grad is not None and bool(p.grad.any())
        }
    return reached


@pytest.mark.parametrize("classes", [WITH_IMAGE_TASK, ONE_SEGMENTATION_TASK, SEGMENTATION])
def test_parameter_split_is_a_partition_by_the_losses_each_parameter_reaches(classes):
    """Shared = reaches two losses or more; task t's group = reaches t's loss and no other.
    With one segmentation task beside an image task, the DFE and the decoder are its own."""
    network = network_of(classes, seed=1).eval()
    image, targets = batch(classes, seed=1)
    shared = network.shared_parameters()
    groups = network.task_parameters()
    ids = [id(p) for p in shared] + [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in network.parameters()}
    reached = reached_by(network, image, targets)
    names = {id(p): name for name, p in network.named_parameters()}
    for p in shared:
        assert sum(id(p) in r for r in reached.values()) >= 2, names[id(p)]
    for task, group in groups.items():
        for p in group:
            assert {t for t, r in reached.items() if id(p) in r} == {task}, names[id(p)]
    decoder = {id(p) for p in network.decoder.parameters()}
    if classes is ONE_SEGMENTATION_TASK:
        assert decoder <= {id(p) for p in groups["wound"]}
    else:
        assert decoder <= {id(p) for p in shared}


@pytest.mark.parametrize("classes", [WITH_IMAGE_TASK, ONE_SEGMENTATION_TASK])
@pytest.mark.parametrize("transformer_stages", [2, 0])
def test_representation_is_a_cut_with_an_image_task(classes, transformer_stages):
    network = network_of(classes, seed=2, transformer_stages=transformer_stages).eval()
    image, targets = batch(classes, seed=2)
    shared = network.shared_parameters()
    for task in classes:
        representation, losses = losses_of(network, image, targets)
        plain, through = cut_gradients(shared, representation, losses[task])
        assert any(bool(g.any()) for g in plain)
        for a, b in zip(through, plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backbone", ["attention_unet", "resnet_unet"])
def test_gradnorm_w_is_reached_by_every_task_and_its_gradients_are_exact(backbone):
    network = network_of(backbone=backbone, seed=3).eval()
    assert network.last_shared_layer() is network.resformer_blocks[-1]
    plain = network_of(SEGMENTATION, backbone=backbone)
    assert plain.last_shared_layer() is plain.decoder.last_layer

    image, targets = batch(side=32 if backbone == "attention_unet" else 64, seed=3)
    last = network.last_shared_parameters()
    _, losses = losses_of(network, image, targets)
    for task in WITH_IMAGE_TASK:
        grads = torch.autograd.grad(losses[task], last, retain_graph=True, allow_unused=True)
        assert any(g is not None and bool(g.any()) for g in grads), task

    weights = {"wound": 0.4, "tissue": 1.6, "infection": 0.25}
    balancer = GradNorm(tuple(WITH_IMAGE_TASK), alpha=1.5, learning_rate=0.1)
    balancer.start({"wound": 1.2, "tissue": 2.5, "infection": 0.7})
    with torch.no_grad():
        balancer.task_weights.copy_(torch.tensor(list(weights.values())))
    representation, losses = losses_of(network, image, targets)
    step = Step(network.shared_parameters(), network.task_parameters(), last, representation)
    balancer.backward(losses, step)
    got = {name: p.grad.clone() for name, p in network.named_parameters()}
    norms = balancer.last_grad_norms

    network.zero_grad(set_to_none=True)
    _, losses = losses_of(network, image, targets)
    sum(weights[t] * losses[t] for t in WITH_IMAGE_TASK).backward()
    for name, p in network.named_parameters():
        torch.testing.assert_close(got[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    _, losses = losses_of(network, image, targets)
    for task, weight in weights.items():
        grads = torch.autograd.grad(losses[task], last, retain_graph=True, allow_unused=True)
        norm = torch.sqrt(sum((g**2).sum() for g in grads if g is not None))
        assert norms[task] == pytest.approx(weight * float(norm), rel=1e-4)


def test_dfe_variants_and_the_untouched_skips_without_dfe():
    dilated = network_of(dfe="dilated")
    pointwise = network_of(dfe="pointwise_dilated")
    # one DFE per skip: every encoder feature but the coarsest
    assert len(dilated.enhancements) == len(dilated.encoder.channels) - 1
    assert [len(e.branches) for e in dilated.enhancements] == [3, 3]
    assert [len(e.branches) for e in pointwise.enhancements] == [4, 4]
    first = dilated.enhancements[0].branches[0][0]
    assert (first.kernel_size, first.dilation) == ((3, 3), (6, 6))
    assert pointwise.enhancements[0].branches[0][0].kernel_size == (1, 1)

    none = network_of(dfe="none").eval()
    assert len(none.enhancements) == 0
    image, _ = batch()
    seen = []
    hook = none.decoder.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        none(image)
        refined = none.refine(none.encoder(image))
    hook.remove()
    assert len(seen[0]) == len(refined)
    for a, b in zip(seen[0], refined, strict=True):
        assert torch.equal(a, b)


def test_dfe_keeps_the_width_and_changes_the_feature():
    block = DilatedFeatureEnhancement(8, (1, 2), pointwise=True).eval()
    x = torch.randn(2, 8, 6, 6)
    y = block(x)
    assert y.shape == x.shape and not torch.equal(x, y)


@pytest.mark.parametrize("side", [3, 5, 6])
def test_padding_is_invisible_to_the_windowed_attention(side):
    """Tokens padded to whole windows are masked: with the relative position bias set to
    zero (content-only attention), a window-8 block on a side x side map (one padded window)
    computes what a window-``side`` block with the same weights computes (one exact window)."""
    torch.manual_seed(0)
    padded = FittedWindowBlock(8, head_dim=4, window_size=8, shifted=False)
    exact = FittedWindowBlock(8, head_dim=4, window_size=side, shifted=False)
    state = {k: v for k, v in padded.state_dict().items() if "relative_position" not in k}
    exact.load_state_dict(state, strict=False)
    for block in (padded, exact):
        with torch.no_grad():
            block.attn.relative_position_bias_table.zero_()
    x = torch.randn(2, side, side, 8)
    torch.testing.assert_close(padded(x), exact(x))


def test_shifted_windows_mask_the_wrapped_rows_and_the_padding():
    block = FittedWindowBlock(8, head_dim=4, window_size=4, shifted=True)
    assert block.shift_size == (2, 2)
    x = torch.randn(1, 5, 5, 8)
    mask = block.window_mask(5, 5, (2, 2), torch.zeros(1, 8, 8, 8))
    assert mask.shape == (4, 16, 16)
    # first window: rows/columns 0-3; row 3 and column 3 are wrapped (5 - 2 = 3 .. 4)
    labels = mask[0, 0].reshape(4, 4) == 0  # who token (0, 0) may attend to
    assert labels[:3, :3].all() and not labels[3].any() and not labels[:, 3].any()
    assert block(x).shape == x.shape
    assert block.window_mask(4, 4, (0, 0), torch.zeros(1, 4, 4, 8)) is None


def test_options_are_checked():
    with pytest.raises(ValueError, match="dfe must be one of"):
        network_of(dfe="aspp")
    with pytest.raises(ValueError, match="transformer_stages=4, but the encoder has 3"):
        network_of(transformer_stages=4)
    with pytest.raises(ValueError, match="'lesion'"):
        network_of(image_tasks=("lesion",))
    with pytest.raises(ValueError, match="at least one segmentation task"):
        network_of({"infection": 3})
    with pytest.raises(ValueError, match="transformer_depth"):
        network_of(transformer_depth=0)
    with pytest.raises(ValueError, match="dilations"):
        network_of(dfe_dilations=())


def test_two_builds_from_the_same_seed_compute_the_same_outputs():
    image, _ = batch(seed=4)
    outputs = []
    for _ in range(2):
        network = network_of(seed=4)
        torch.manual_seed(5)  # dropout in the classification head
        outputs.append(network(image)[1])
    for task in WITH_IMAGE_TASK:
        assert torch.equal(outputs[0][task], outputs[1][task])
