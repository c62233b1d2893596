"""CTAN's cross-task attention network (wing.models.ctan): per-task decoders exchanging
features through cross-task attention, its parameter split and its representation as a cut."""

from __future__ import annotations

import pytest
import torch

from conftest import cut_gradients
from wing.models import build_network, count_parameters
from wing.models.ctan import CrossTaskAttention
from wing.training.losses import segmentation_loss

CLASSES = {"wound": 2, "tissue": 5}
TINY = {"channels": (4, 8, 16), "strides": (2, 2)}  # decoder stages: 8 ch at 16 px, 4 at 32


def network_of(classes=CLASSES, seed: int = 0, **options):
    torch.manual_seed(seed)
    return build_network(
        "attention_unet",
        classes,
        architecture="ctan",
        backbone_options=TINY,
        architecture_options=options,
    )


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, 32, 32, generator=g)
    targets = {t: torch.randint(0, n, (2, 32, 32), generator=g) for t, n in CLASSES.items()}
    return image, targets


def losses_of(network, image, targets):
    representation, logits = network(image)
    return representation, {t: segmentation_loss(logits[t], targets[t]) for t in CLASSES}


def test_output_shapes_exchange_points_and_distinct_decoders():
    network = network_of()
    image, _ = batch()
    representation, logits = network(image)
    assert {t: tuple(v.shape) for t, v in logits.items()} == {
        "wound": (2, 2, 32, 32),
        "tissue": (2, 5, 32, 32),
    }
    # k = 2 exchange points: after stage 0 (8 channels) and after ``end`` (4 channels)
    assert network.exchange_after == (0,) and len(network.exchanges) == 2
    assert [block["wound"].query_norm.normalized_shape for block in network.exchanges] == [
        (8,),
        (4,),
    ]
    assert [tuple(z.shape) for z in representation] == [(2, 4, 32, 32)] * 2
    wound, tissue = network.decoders["wound"], network.decoders["tissue"]
    assert wound is not tissue
    assert not {id(p) for p in wound.parameters()} & {id(p) for p in tissue.parameters()}


@pytest.mark.parametrize("exchange_stages", [2, 1, 0])
def test_parameter_split_is_a_partition_by_the_losses_each_parameter_reaches(exchange_stages):
    """Shared = reaches both losses; task t's group = reaches t's loss and no other."""
    network = network_of(exchange_stages=exchange_stages).eval()
    image, targets = batch(1)
    shared = network.shared_parameters()
    groups = network.task_parameters()
    ids = [id(p) for p in shared] + [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in network.parameters()}
    n_head = {"wound": 4 * 2 + 2, "tissue": 4 * 5 + 5}
    n_block = 4 * 4**2 + 8 * 4 + 1  # the last exchange's block at the 4-channel output
    for task, group in groups.items():
        own = n_head[task] + (n_block if exchange_stages else 0)
        if exchange_stages == 0:  # the task's whole decoder is its own
            own += count_parameters(network.decoders[task])
        assert sum(p.numel() for p in group) == own
    names = {id(p): name for name, p in network.named_parameters()}
    for task in CLASSES:
        network.zero_grad(set_to_none=True)
        _, losses = losses_of(network, image, targets)
        losses[task].backward()
        # every shared parameter is reached by this task's loss (so by both) ...
        dead = [names[id(p)] for p in shared if p.grad is None or not p.grad.any()]
        assert not dead, (task, dead)
        # ... task t's own by t's loss, and by no other task's
        for other, group in groups.items():
            reached = [p.grad is not None and bool(p.grad.any()) for p in group]
            assert all(reached) if other == task else not any(reached), (task, other)


@pytest.mark.parametrize("exchange_stages", [2, 1, 0])
def test_representation_is_a_cut_between_shared_and_task_parameters(exchange_stages):
    """Each task's loss back-propagated to the representation, then into the shared
    parameters, gives exactly a plain backward's gradients on them."""
    network = network_of(exchange_stages=exchange_stages, seed=2).eval()
    image, targets = batch(2)
    shared = network.shared_parameters()
    for task in CLASSES:
        representation, losses = losses_of(network, image, targets)
        plain, through = cut_gradients(shared, tuple(representation), losses[task])
        for a, b in zip(through, plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # W, the last shared layer, is shared and directly below the representation
    last = {id(p) for p in network.last_shared_parameters()}
    assert last and last <= {id(p) for p in shared}


def perturbed_logits(network, image, task: str, module: str):
    """Each task's logits before and after noise is added to ``task``'s decoder ``module``."""
    network.eval()
    with torch.no_grad():
        before = network(image)[1]
        for p in network.decoders[task].get_submodule(module).parameters():
            p.add_(torch.randn_like(p))
        after = network(image)[1]
    return before, after


@pytest.mark.parametrize("exchange_stages", [2, 1, 0])
def test_each_task_sees_the_other_decoders_features_only_through_an_exchange(exchange_stages):
    network = network_of(exchange_stages=exchange_stages, seed=3)
    image, _ = batch(3)
    # the tissue decoder's first stage, before every exchange point
    before, after = perturbed_logits(network, image, "tissue", "stages.0")
    assert not torch.equal(before["tissue"], after["tissue"])
    if exchange_stages:
        assert (before["wound"] - after["wound"]).abs().max() > 1e-4
    else:
        assert torch.equal(before["wound"], after["wound"])


@pytest.mark.parametrize("exchange_stages", [2, 1])
def test_the_exchange_points_are_the_finest_scales(exchange_stages):
    """Inside the wound decoder, the input of stage 1 (after stage 0's exchange point)
    depends on the tissue decoder only when that point exchanges (k = 2); with k = 1 the only
    exchange is on the decoders' outputs."""
    network = network_of(exchange_stages=exchange_stages, seed=4).eval()
    image, _ = batch(4)
    seen = []
    hook = (
        network.decoders["wound"]
        .stages[1]["upconv"]
        .register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].detach().clone()))
    )
    perturbed_logits(network, image, "tissue", "stages.0")
    hook.remove()
    assert torch.equal(seen[0], seen[1]) == (exchange_stages == 1)


def test_with_one_task_it_is_hard_sharings_single_task_network():
    image, _ = batch(5)
    ctan = network_of({"wound": 2}, seed=5, exchange_stages=2).eval()
    torch.manual_seed(5)
    hard = build_network("attention_unet", {"wound": 2}, backbone_options=TINY).eval()
    assert len(ctan.exchanges) == 0 and count_parameters(ctan) == count_parameters(hard)
    assert [p.shape for p in ctan.task_parameters()["wound"]] == [(2, 4, 1, 1), (2,)]
    with torch.no_grad():
        (z, logits), (z_hard, logits_hard) = ctan(image), hard(image)
    assert isinstance(z, torch.Tensor) and logits["wound"].shape == (2, 2, 32, 32)
    assert torch.equal(z, z_hard) and torch.equal(logits["wound"], logits_hard["wound"])
    assert [p.shape for p in ctan.last_shared_parameters()] == [(4, 4, 1, 1), (4,)]


def test_key_value_pooling_bounds_the_keys_and_zero_gamma_is_the_identity():
    block = CrossTaskAttention(channels=8, heads=2, key_value_size=4, residual_scale=0.0)
    x, other = torch.randn(2, 8, 32, 32), torch.randn(2, 8, 32, 32)
    assert block.tokens(other).shape == (2, 16, 8)  # 4 x 4 positions instead of 32 x 32
    assert torch.equal(block(x, [other]), x)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    assert block(x, [other]).shape == x.shape and not torch.equal(block(x, [other]), x)
    block.key_value_size = 0
    assert block.tokens(other).shape == (2, 1024, 8)
    # pooled and unpooled keys give different updates: the option is real
    pooled = CrossTaskAttention(8, 2, 4, 1.0)
    pooled.load_state_dict(block.state_dict())
    assert not torch.allclose(pooled(x, [other]), block(x, [other]))


def test_options_are_checked():
    with pytest.raises(ValueError, match="do not divide"):
        network_of(heads=3)
    with pytest.raises(ValueError, match="exchange_stages >= 0"):
        network_of(exchange_stages=-1)
    assert len(network_of(exchange_stages=9).exchanges) == 2  # capped at the decoder's stages
