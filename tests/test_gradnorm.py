"""GradNorm's defining properties (Chen et al. 2018) on a toy problem and the real network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wing.balancing import BALANCERS, EqualWeighting, GradNorm, Step
from wing.models import build_network
from wing.training.losses import segmentation_loss

TASKS = ("wound", "tissue")


class Toy(nn.Module):
    """Shared trunk (two layers, the last is W) and one linear head per task."""

    def __init__(self, scales=(1.0, 10.0)):
        super().__init__()
        self.first = nn.Linear(4, 8)
        self.last = nn.Linear(8, 8)
        self.heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in TASKS})
        self.scales = dict(zip(TASKS, scales, strict=True))

    def forward(self, x):
        z = torch.tanh(self.last(torch.tanh(self.first(x))))
        return z, {t: self.scales[t] * head(z) for t, head in self.heads.items()}

    def groups(self):
        shared = [*self.first.parameters(), *self.last.parameters()]
        heads = {t: list(head.parameters()) for t, head in self.heads.items()}
        return shared, heads, list(self.last.parameters())


def losses_of(model, x, targets):
    z, out = model(x)
    return z, {t: ((out[t].squeeze(1) - targets[t]) ** 2).mean() for t in TASKS}


def data(seed=0, n=32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, {"wound": x.sum(1), "tissue": torch.sin(x[:, 0]) * 3}


@pytest.mark.parametrize("with_representation", [True, False])
def test_network_gradients_equal_those_of_the_weighted_sum(with_representation: bool):
    """No second-order leak: d/dtheta equals that of sum_i w_i L_i with w held fixed."""
    torch.manual_seed(0)
    model, (x, y) = Toy(), data()
    balancer = GradNorm(TASKS, alpha=1.5, learning_rate=0.1)
    with torch.no_grad():
        balancer.task_weights.copy_(torch.tensor([0.4, 1.6]))
    shared, heads, last = model.groups()

    z, losses = losses_of(model, x, y)
    representation = z if with_representation else None
    used = balancer.backward(losses, Step(shared, heads, last, representation))
    got = [p.grad.clone() for p in model.parameters()]

    model.zero_grad()
    _, losses = losses_of(model, x, y)
    (0.4 * losses["wound"] + 1.6 * losses["tissue"]).backward()
    want = [p.grad.clone() for p in model.parameters()]
    assert used == pytest.approx({"wound": 0.4, "tissue": 1.6})
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-7)


def naive_gradnorm_weight_gradient(model, x, y, weights, initial, alpha):
    """Textbook GradNorm with create_graph=True, as popular re-implementations do it."""
    w = weights.clone().requires_grad_(True)
    _, losses = losses_of(model, x, y)
    last = list(model.last.parameters())
    norms = []
    for i, t in enumerate(TASKS):
        grads = torch.autograd.grad(w[i] * losses[t], last, create_graph=True)
        norms.append(torch.sqrt(sum((g**2).sum() for g in grads)))
    norms = torch.stack(norms)
    ratios = torch.stack([losses[t].detach() / initial[t] for t in TASKS])
    target = (norms.mean() * (ratios / ratios.mean()) ** alpha).detach()
    (grad,) = torch.autograd.grad((norms - target).abs().sum(), w)
    return grad


def test_weight_gradient_equals_the_textbook_gradnorm_loss():
    torch.manual_seed(1)
    model, (x, y) = Toy(), data(1)
    balancer = GradNorm(TASKS, alpha=1.5, learning_rate=0.1)
    shared, heads, last = model.groups()
    z, losses = losses_of(model, x, y)
    balancer.backward(losses, Step(shared, heads, last, z))  # step 0 fixes L_i(0)
    initial = dict(balancer.initial_losses)
    weights = balancer.task_weights.detach().clone()
    expected = naive_gradnorm_weight_gradient(model, x, y, weights, initial, 1.5)

    captured = {}
    original = balancer.optimizer.step

    def spy(*args, **kwargs):
        captured["grad"] = balancer.task_weights.grad.clone()
        return original(*args, **kwargs)

    balancer.optimizer.step = spy
    model.zero_grad()
    z, losses = losses_of(model, x, y)
    balancer.backward(losses, Step(shared, heads, last, z))
    torch.testing.assert_close(captured["grad"], expected, rtol=1e-4, atol=1e-6)


def train_toy(balancer, steps=150, scales=(1.0, 10.0), seed=0):
    torch.manual_seed(seed)
    model, (x, y) = Toy(scales), data(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    shared, heads, last = model.groups()
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        z, losses = losses_of(model, x, y)
        balancer.backward(losses, Step(shared, heads, last, z))
        optimizer.step()
        history.append((dict(balancer.weights()), dict(getattr(balancer, "last_grad_norms", {}))))
    return history


def test_weights_always_sum_to_the_number_of_tasks():
    for weights, _ in train_toy(GradNorm(TASKS, alpha=1.5, learning_rate=0.05), steps=60):
        assert sum(weights.values()) == pytest.approx(len(TASKS), rel=1e-5)
        assert min(weights.values()) > 0


def test_alpha_zero_equalises_the_weighted_gradient_norms():
    """With alpha = 0 the target is the mean norm: the G_i converge to each other."""
    history = train_toy(GradNorm(TASKS, alpha=0.0, learning_rate=0.05), steps=300)
    first, last = history[0][1], history[-1][1]
    gap = lambda norms: abs(norms["wound"] - norms["tissue"]) / (sum(norms.values()) / 2)  # noqa: E731
    assert gap(first) > 0.5  # the tasks start far apart (loss scales 1 vs 10)
    assert gap(last) < 0.1
    # ... because the weights moved away from 1, not because the raw norms met by chance.
    assert max(abs(w - 1.0) for w in history[-1][0].values()) > 0.2


def test_equal_weighting_is_the_plain_sum():
    torch.manual_seed(0)
    model, (x, y) = Toy(), data()
    shared, heads, last = model.groups()
    z, losses = losses_of(model, x, y)
    weights = EqualWeighting(TASKS).backward(losses, Step(shared, heads, last, z))
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    _, losses = losses_of(model, x, y)
    (losses["wound"] + losses["tissue"]).backward()
    assert weights == {"wound": 1.0, "tissue": 1.0}
    for g, p in zip(got, model.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


def test_absent_task_contributes_nothing_and_keeps_weights_finite():
    """Partial labels: a batch without the tissue label updates only from the wound loss."""
    torch.manual_seed(0)
    model, (x, y) = Toy(), data()
    balancer = GradNorm(TASKS)
    shared, heads, last = model.groups()
    z, losses = losses_of(model, x, y)
    before = balancer.task_weights.detach().clone()
    balancer.backward({"wound": losses["wound"]}, Step(shared, heads, last, z))
    assert torch.equal(balancer.task_weights.detach(), before)  # one task: nothing to balance
    assert all(torch.isfinite(p.grad).all() for p in shared)
    assert model.heads["tissue"].weight.grad is None
    assert "tissue" not in balancer.initial_losses


def test_registry_names():
    assert {"ew", "gradnorm"} <= set(BALANCERS.names())
    with pytest.raises(KeyError, match="unknown balancer 'nash'"):
        BALANCERS.get("nash")
    with pytest.raises(ValueError, match="two or more tasks"):
        GradNorm(("wound",))


# The real network: MONAI's Attention-UNet blocks (BatchNorm in its encoder, attention gates
# and up-convolutions), two segmentation heads, the project's Dice + CE loss.


def attention_unet_problem(seed: int = 0):
    torch.manual_seed(seed)
    network = build_network(
        "attention_unet",
        {"wound": 2, "tissue": 5},
        backbone_options={"channels": (4, 8, 16), "strides": (2, 2)},
    ).train()
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, 3, 32, 32, generator=g)
    targets = {
        "wound": torch.randint(0, 2, (3, 32, 32), generator=g),
        "tissue": torch.randint(0, 5, (3, 32, 32), generator=g),
    }
    targets["tissue"][0] = 255  # partial labels: the first image has no tissue label
    return network, image, targets


def unet_losses(network, image, targets):
    z, logits = network(image)
    return z, {t: segmentation_loss(logits[t], targets[t]) for t in TASKS}


@pytest.mark.parametrize("layer", ["last", "decoder.stages.1.merge"])
def test_attention_unet_gradients_equal_those_of_the_weighted_sum(layer: str):
    """No second-order leak on the real trunk (BatchNorm in train mode throughout), W = its
    last 1x1 conv or the top decoder merge block (conv, InstanceNorm, PReLU) inside it."""
    network, image, targets = attention_unet_problem()
    balancer = GradNorm(TASKS, alpha=1.5, learning_rate=0.1)
    balancer.start({"wound": 1.2, "tissue": 2.5})
    with torch.no_grad():
        balancer.task_weights.copy_(torch.tensor([0.4, 1.6]))
    last = network.last_shared_parameters(layer)
    if layer != "last":  # W holds a conv, a normalisation and a PReLU slope
        kinds = {type(m) for m in network.get_submodule(layer).modules()}
        assert {torch.nn.Conv2d, torch.nn.InstanceNorm2d, torch.nn.PReLU} <= kinds
        assert len(last) == 3

    z, losses = unet_losses(network, image, targets)
    balancer.backward(losses, Step(network.shared_parameters(), network.task_parameters(), last, z))
    got = {name: p.grad.clone() for name, p in network.named_parameters()}

    network.zero_grad(set_to_none=True)
    _, losses = unet_losses(network, image, targets)
    (0.4 * losses["wound"] + 1.6 * losses["tissue"]).backward()
    for name, p in network.named_parameters():
        torch.testing.assert_close(got[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("layer", ["last", "decoder.stages.1.merge"])
def test_attention_unet_weight_gradient_equals_the_textbook_gradnorm_loss(layer: str):
    network, image, targets = attention_unet_problem(1)
    initial = {"wound": 1.3, "tissue": 2.2}
    balancer = GradNorm(TASKS, alpha=1.5, learning_rate=0.1)
    balancer.start(initial)
    with torch.no_grad():
        balancer.task_weights.copy_(torch.tensor([1.3, 0.7]))
    weights = balancer.task_weights.detach().clone()
    last = network.last_shared_parameters(layer)

    # Textbook: G_i = ||grad_W (w_i L_i)|| with create_graph, then d L_grad / d w.
    w = weights.clone().requires_grad_(True)
    _, losses = unet_losses(network, image, targets)
    norms = []
    for i, t in enumerate(TASKS):
        grads = torch.autograd.grad(w[i] * losses[t], last, create_graph=True)
        norms.append(torch.sqrt(sum((g**2).sum() for g in grads)))
    norms = torch.stack(norms)
    ratios = torch.stack([losses[t].detach() / initial[t] for t in TASKS])
    target = (norms.mean() * (ratios / ratios.mean()) ** 1.5).detach()
    (expected,) = torch.autograd.grad((norms - target).abs().sum(), w)

    captured = {}
    original = balancer.optimizer.step

    def spy(*args, **kwargs):
        captured["grad"] = balancer.task_weights.grad.clone()
        return original(*args, **kwargs)

    balancer.optimizer.step = spy
    network.zero_grad(set_to_none=True)
    z, losses = unet_losses(network, image, targets)
    balancer.backward(losses, Step(network.shared_parameters(), network.task_parameters(), last, z))
    torch.testing.assert_close(captured["grad"], expected, rtol=1e-4, atol=1e-6)
    assert balancer.initial_losses == initial  # start()'s L_i(0), not this batch's losses


def test_start_sets_initial_losses_before_any_batch():
    """L_i(0) from start() is used as given, also for a task the first batches lack; without
    start() the fallback is the task's loss on the first batch that contains it."""
    torch.manual_seed(0)
    model, (x, y) = Toy(), data()
    shared, heads, last = model.groups()
    started = GradNorm(TASKS)
    started.start({"wound": 2.0, "tissue": 30.0})
    fallback = GradNorm(TASKS)
    for balancer in (started, fallback):
        z, losses = losses_of(model, x, y)
        balancer.backward({"wound": losses["wound"]}, Step(shared, heads, last, z))  # wound only
        model.zero_grad()
    z, losses = losses_of(model, x, y)
    fallback.backward(losses, Step(shared, heads, last, z))
    assert started.initial_losses == {"wound": 2.0, "tissue": 30.0}
    assert fallback.initial_losses["tissue"] == pytest.approx(float(losses["tissue"].detach()))
    assert fallback.initial_losses["wound"] != pytest.approx(2.0)
    with pytest.raises(KeyError, match="unknown tasks"):
        started.start({"depth": 1.0})


def test_equal_weighting_ignores_start():
    balancer = EqualWeighting(TASKS)
    balancer.start({"wound": 1.0, "tissue": 2.0})
    assert balancer.weights() == {"wound": 1.0, "tissue": 1.0}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gradnorm_steps_with_network_and_weights_on_the_gpu():
    """The trainer moves the balancer to the network's device: the task weights, the
    per-task norms and the loss ratios must meet there (found on an H100)."""
    network, image, targets = attention_unet_problem()
    device = torch.device("cuda")
    network = network.to(device)
    image = image.to(device)
    targets = {t: v.to(device) for t, v in targets.items()}
    balancer = GradNorm(TASKS, alpha=1.5, learning_rate=0.1).to(device)
    balancer.start({"wound": 1.2, "tissue": 2.5})
    z, losses = unet_losses(network, image, targets)
    step = Step(
        network.shared_parameters(),
        network.task_parameters(),
        network.last_shared_parameters(),
        z,
    )
    before = balancer.task_weights.detach().clone()
    balancer.backward(losses, step)
    assert balancer.task_weights.device.type == "cuda"
    assert not torch.equal(balancer.task_weights.detach(), before)
    assert float(balancer.task_weights.sum()) == pytest.approx(len(TASKS))
