"""MT-IDS's DBR gate (wing.models.mt_ids): shapes, convex gate weights, the parameter
partition, and the cut property of the representation (which fails without the aliases)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional

from conftest import cut_gradients
from wing.models import build_network, mt_ids
from wing.models.mt_ids import GatedExpertsNetwork

TASKS = {"wound": 2, "tissue": 5}
BACKBONE = {"channels": (4, 8, 16), "strides": (2, 2)}


def network(tasks=TASKS, **options) -> GatedExpertsNetwork:
    torch.manual_seed(0)
    return build_network(
        "attention_unet",
        tasks,
        architecture="mt_ids",
        backbone_options=BACKBONE,
        architecture_options=options,
    )


def batch(tasks=TASKS, dtype=torch.float32):
    generator = torch.Generator().manual_seed(1)
    image = torch.randn(2, 3, 32, 32, generator=generator, dtype=dtype)
    labels = {t: torch.randint(0, n, (2, 32, 32), generator=generator) for t, n in tasks.items()}
    return image, labels


def task_losses(net, tasks=TASKS, dtype=torch.float32):
    image, labels = batch(tasks, dtype)
    representation, logits = net(image)
    losses = {t: functional.cross_entropy(logits[t], labels[t]) for t in tasks}
    return representation, losses


def test_output_shapes_and_representation():
    net = network()
    image, _ = batch()
    representation, logits = net(image)
    assert {t: tuple(v.shape) for t, v in logits.items()} == {
        "wound": (2, 2, 32, 32),
        "tissue": (2, 5, 32, 32),
    }
    # 3 stem aliases (one per encoder scale) then 2 shared experts' outputs (4 channels)
    shapes = [tuple(r.shape) for r in representation]
    assert shapes == [(2, 4, 32, 32), (2, 8, 16, 16), (2, 16, 8, 8)] + [(2, 4, 32, 32)] * 2


@pytest.mark.parametrize("gate", ["dual", "flat"])
@pytest.mark.parametrize("spatial_gate", [False, True])
def test_gate_weights_are_a_convex_combination(gate, spatial_gate):
    net = network(shared_experts=2, task_experts=2, gate=gate, spatial_gate=spatial_gate)
    image, _ = batch()
    net(image)
    for task in TASKS:
        weights = net.last_gate_weights[task]
        expected = (2, 4, 32, 32) if spatial_gate else (2, 4)
        assert tuple(weights.shape) == expected
        assert (weights > 0).all()
        torch.testing.assert_close(weights.sum(1), torch.ones_like(weights.sum(1)))
    # the two tasks' gates differ (each task has its own)
    assert not torch.allclose(net.last_gate_weights["wound"], net.last_gate_weights["tissue"])


def test_dual_gate_group_branch_sets_the_shared_share():
    """The group branch alone decides the shared experts' total weight."""
    net = network(shared_experts=2, task_experts=2)
    gate = net.gates["wound"]
    with torch.no_grad():
        gate.logits.weight.zero_()
        gate.logits.bias.copy_(torch.tensor([1.0, 0.0, 0.3, -0.2, 2.0, 0.5]))
    weights = gate(torch.randn(3, 16, 8, 8), (32, 32))
    shared_share = torch.sigmoid(torch.tensor(1.0))
    torch.testing.assert_close(weights[:, :2].sum(1), shared_share.expand(3))
    torch.testing.assert_close(
        weights[:, :2] / shared_share, torch.tensor([0.3, -0.2]).softmax(0).expand(3, 2)
    )


def test_gated_mixture_is_what_the_head_reads():
    """logits_t = head_t(sum_j w_tj expert_j(stem)) with the logged weights."""
    net = network().eval()
    image, _ = batch()
    with torch.no_grad():
        _, logits = net(image)
        features = net.encoder(image)
        for task in TASKS:
            experts = [*net.shared_experts, *net.task_experts[task]]
            weights = net.last_gate_weights[task]
            outputs = [expert(features) for expert in experts]
            mixture = sum(weights[:, j, None, None, None] * o for j, o in enumerate(outputs))
            torch.testing.assert_close(logits[task], net.heads[task](mixture))


def test_parameters_are_a_partition():
    net = network(shared_experts=2, task_experts=1)
    groups = net.task_parameters()
    shared = {id(p) for p in net.shared_parameters()}
    ids = [id(p) for group in groups.values() for p in group]
    assert len(ids) == len(set(ids))  # no parameter in two task groups
    assert shared.isdisjoint(ids)
    assert shared | set(ids) == {id(p) for p in net.parameters()}
    expected_shared = {id(p) for p in [*net.encoder.parameters(), *net.shared_experts.parameters()]}
    assert shared == expected_shared
    for task, group in groups.items():
        own = [*net.task_experts[task].parameters(), *net.gates[task].parameters()]
        own += list(net.heads[task].parameters())
        assert {id(p) for p in group} == {id(p) for p in own}
    # W is a shared module just below the representation
    assert {id(p) for p in net.last_shared_parameters()} <= shared


def test_task_group_gets_no_gradient_from_the_other_task():
    net = network()
    _, losses = task_losses(net)
    groups = net.task_parameters()
    shared = net.shared_parameters()
    for task, other in (("wound", "tissue"), ("tissue", "wound")):
        crossed = torch.autograd.grad(
            losses[other], groups[task], retain_graph=True, allow_unused=True
        )
        assert all(g is None for g in crossed)
        own = torch.autograd.grad(losses[task], groups[task], retain_graph=True, allow_unused=True)
        assert all(g is not None for g in own)
        # and every shared parameter reaches this task's loss
        reached = torch.autograd.grad(losses[task], shared, retain_graph=True, allow_unused=True)
        assert all(g is not None for g in reached)


def _cut_gradients(net, task, tasks=TASKS):
    """(plain backward, backward through the representation) on the shared parameters, in
    double precision (the two routes sum the same terms in a different order)."""
    net.double()
    representation, losses = task_losses(net, tasks, torch.float64)
    return cut_gradients(net.shared_parameters(), representation, losses[task])


@pytest.mark.parametrize("options", [{}, {"spatial_gate": True, "gate": "flat"}])
@pytest.mark.parametrize("task", list(TASKS))
def test_representation_is_a_cut(task, options):
    net = network(**options)
    plain, through = _cut_gradients(net, task)
    for a, b in zip(plain, through, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-12)


def test_cut_fails_without_the_aliases(monkeypatch):
    """With the stem features themselves in the representation, the stem's gradient through
    the shared experts is counted twice: the encoder's gradients differ."""
    monkeypatch.setattr(mt_ids, "task_side_view", lambda features: list(features))
    net = network()
    plain, through = _cut_gradients(net, "wound")
    encoder = {id(p) for p in net.encoder.parameters()}
    mismatched = [
        id(p) in encoder
        for p, a, b in zip(net.shared_parameters(), plain, through, strict=True)
        if not torch.allclose(a, b, rtol=1e-5, atol=1e-12)
    ]
    assert mismatched and all(mismatched)  # the encoder, and only the encoder, is off


def test_single_task_builds_runs_and_keeps_the_cut():
    tasks = {"wound": 2}
    net = network(tasks)
    plain, through = _cut_gradients(net, "wound", tasks)
    for a, b in zip(plain, through, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-12)
    assert set(net.last_gate_weights) == {"wound"}
    assert len(net.task_parameters()["wound"]) > 0


@pytest.mark.parametrize(
    ("shared_experts", "task_experts", "n_representation"), [(0, 1, 3), (1, 0, 2)]
)
def test_degenerate_expert_counts(shared_experts, task_experts, n_representation):
    """Encoder-only sharing (no shared expert) and shared experts only (the task side reads
    just the coarsest feature, for its gate) both keep the cut."""
    net = network(shared_experts=shared_experts, task_experts=task_experts)
    representation, _ = task_losses(net)
    assert len(representation) == n_representation
    plain, through = _cut_gradients(net, "tissue")
    for a, b in zip(plain, through, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize(
    "options", [{"shared_experts": 0, "task_experts": 0}, {"gate": "soft"}, {"task_experts": -1}]
)
def test_invalid_options_are_refused(options):
    with pytest.raises(ValueError, match="mt_ids"):
        network(**options)
