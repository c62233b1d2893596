"""Every balancer of the registry: the shared contract, then the property that defines each one.

In the manner of torchjd's shared ``_asserts`` (tests/unit/aggregation/_asserts.py): a
property is a helper ``assert_<property>(factory, **options)`` that builds a balancer with
``factory(TASKS)`` and checks it on a small problem whose answer is known in closed form;
every helper except equal weighting's own is also run on ``EqualWeighting`` and must raise
there, so no property test can pass vacuously.

Two synthetic problems, made in code:

- ``Toy``: a shared trunk (two layers, the second is GradNorm's W) -> representation z ->
  one linear head per task, squared-error losses on a fixed batch; the contract runs on it.
- ``Problem``: the shared parameter theta is the representation itself (z = theta) and each
  head is a scalar h_k = 1, with L_k = h_k (a_k . z + z^T H_k z / 2); so grad_theta L_k =
  a_k + H_k theta is known exactly (a_k when H_k = 0), and the shared update d of a balancer
  can be compared with the closed form of its method.
"""

from __future__ import annotations

import copy
import functools
import io
import math
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from wing.balancing import BALANCERS, Balancer, Step
from wing.balancing.aggregation import CAGrad
from wing.balancing.dd_gb import DDGBWeighting, aligned_combination
from wing.balancing.dynamic_weight_average import DynamicWeightAverage
from wing.balancing.equal_weighting import EqualWeighting
from wing.balancing.fixed_weighting import FixedWeighting
from wing.balancing.gradnorm import GradNorm
from wing.balancing.mt_cool import MTCooL

TASKS = ("wound", "tissue")
NAMES = BALANCERS.names()
Factory = Callable[[tuple[str, ...]], Balancer]
F64 = torch.float64

# Task gradients on a two-dimensional shared parameter (rows: wound, tissue).
# CONFLICT: g_1 . g_2 = -20 < 0 and g_1 dominates, so the plain sum [8, 1] conflicts with g_2.
CONFLICT = torch.tensor([[10.0, 0.0], [-2.0, 1.0]], dtype=F64)
# AGREE: g_1 . g_2 = 3.5 > 0, nothing to resolve.
AGREE = torch.tensor([[1.0, 2.0], [0.5, 1.5]], dtype=F64)


# --- the toy network of the contract --------------------------------------------------------


class Toy(nn.Module):
    """Shared trunk (two layers; the second is W) -> z -> one linear head per task."""

    def __init__(self, tissue_scale: float = 1.0):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 6), nn.Tanh())
        self.heads = nn.ModuleDict({task: nn.Linear(6, 1) for task in TASKS})
        self.tissue_scale = tissue_scale

    def losses(self, batch):
        x, targets = batch
        z = self.trunk(x)
        scale = {"wound": 1.0, "tissue": self.tissue_scale}
        out = {task: scale[task] * head(z).squeeze(1) for task, head in self.heads.items()}
        return z, {task: ((out[task] - targets[task]) ** 2).mean() for task in TASKS}

    def step(self, batch, present=TASKS):
        """The batch's losses of the tasks present and the trainer's ``Step`` for them."""
        z, losses = self.losses(batch)

        def closure():  # the trainer's: the same batch, re-evaluated at the current parameters
            return {task: loss for task, loss in self.losses(batch)[1].items() if task in present}

        step = Step(
            shared_parameters=list(self.trunk.parameters()),
            task_parameters={task: list(head.parameters()) for task, head in self.heads.items()},
            last_shared_parameters=list(self.trunk[2].parameters()),
            representation=z,
            closure=closure,
        )
        return {task: losses[task] for task in present}, step

    def shared_grad(self) -> torch.Tensor:
        return torch.cat([p.grad.flatten() for p in self.trunk.parameters()])


def toy_batch(seed: int = 0, n: int = 16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, {"wound": x.sum(1), "tissue": 3 * torch.sin(2 * x[:, 0]) - x[:, 1]}


def setup(name: str, seed: int = 0):
    """A fresh toy, batch and balancer for ``name``; ``start`` gets the initial losses."""
    torch.manual_seed(seed)
    model, batch = Toy(), toy_batch(seed)
    balancer = BALANCERS.get(name)(TASKS)
    with torch.no_grad():
        balancer.start({task: float(loss) for task, loss in model.losses(batch)[1].items()})
    return model, batch, balancer


def train_step(model, batch, balancer, present=TASKS, lr: float = 0.05):
    """One optimiser step (plain SGD): the balancer's weights, the gradients, the losses."""
    model.zero_grad(set_to_none=True)
    losses, step = model.step(batch, present)
    weights = balancer.backward(losses, step)
    grads = {
        name: None if p.grad is None else p.grad.detach().clone()
        for name, p in model.named_parameters()
    }
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * p.grad
    return weights, grads, {task: float(loss.detach()) for task, loss in losses.items()}


def assert_finite_weights(weights: dict[str, float]) -> None:
    assert set(weights) == set(TASKS)
    assert all(isinstance(w, float) and math.isfinite(w) for w in weights.values()), weights


def assert_same_grads(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] is None) == (b[name] is None), name
        if a[name] is not None:
            assert torch.equal(a[name], b[name]), name


def assert_same_state(a, b, where: str = "state_dict") -> None:
    """Deep equality of two state_dicts (tensors, optimiser state, extra state)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), where  # NaN equals NaN here


# --- the contract, for every registered balancer --------------------------------------------


def test_the_registry_holds_every_method():
    assert set(NAMES) == {
        "ew", "fixed", "uncertainty", "dwa", "gradnorm", "pcgrad", "mgda", "cagrad",
        "nash_mtl", "imtl_g", "aligned_mtl", "upgrad", "dd_gb", "mt_cool",
    }  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_balancer_is_a_module_that_moves_to_the_cpu(name: str):
    model, batch, balancer = setup(name)
    assert isinstance(balancer, Balancer) and isinstance(balancer, nn.Module)
    assert balancer.to("cpu") is balancer
    assert_finite_weights(train_step(model, batch, balancer)[0])
    assert_finite_weights(balancer.weights())


@pytest.mark.parametrize("name", NAMES)
def test_backward_fills_finite_gradients_and_returns_finite_weights(name: str):
    model, batch, balancer = setup(name)
    weights, grads, _ = train_step(model, batch, balancer)
    assert_finite_weights(weights)
    for parameter_name, grad in grads.items():
        if parameter_name.startswith("trunk."):
            assert grad is not None and torch.isfinite(grad).all(), parameter_name
    # Every head of a task present gets a gradient, except with MT-CooL, which by design
    # updates only the active task's sub-model at each step (weight 1); the other's turn comes.
    updated = [t for t in TASKS if weights[t] == 1.0] if name == "mt_cool" else list(TASKS)
    assert updated
    for task in TASKS:
        for parameter_name in ("weight", "bias"):
            grad = grads[f"heads.{task}.{parameter_name}"]
            if task in updated:
                assert grad is not None and torch.isfinite(grad).all(), (task, parameter_name)
            else:
                assert grad is None, (task, parameter_name)


def wound_only_direction(model: Toy, batch, balancer: Balancer) -> torch.Tensor:
    """The shared gradient of the wound loss alone, at the current parameters; for MT-CooL
    at its perturbed point theta + radius g / ||g|| (g the wound gradient), which is where
    that method evaluates its one task's gradient (still the wound loss alone)."""
    reference = copy.deepcopy(model)
    reference.zero_grad(set_to_none=True)
    shared = list(reference.trunk.parameters())
    wound = reference.losses(batch)[1]["wound"]
    grads = torch.autograd.grad(wound, shared)
    if isinstance(balancer, MTCooL) and balancer.radius > 0:
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        with torch.no_grad():
            for p, g in zip(shared, grads, strict=True):
                p += balancer.radius * g / norm
        grads = torch.autograd.grad(reference.losses(batch)[1]["wound"], shared)
    return torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("name", NAMES)
def test_an_absent_task_contributes_nothing(name: str):
    """Partial labels: after a step with both tasks (so stateful balancers have state), a
    batch without the tissue label updates from the wound loss alone, in its direction."""
    model, batch, balancer = setup(name)
    train_step(model, batch, balancer)
    expected = wound_only_direction(model, batch, balancer)
    weights, grads, _ = train_step(model, batch, balancer, present=("wound",))
    assert_finite_weights(weights)
    assert grads["heads.tissue.weight"] is None and grads["heads.tissue.bias"] is None
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    shared = torch.cat([grads[n].flatten() for n, _ in model.trunk.named_parameters("trunk")])
    assert torch.isfinite(shared).all()
    cosine = torch.nn.functional.cosine_similarity(shared.double(), expected.double(), dim=0)
    assert cosine > 1 - 1e-6, float(cosine)
    factor = (shared @ expected) / (expected @ expected)
    assert factor > 0
    assert_close(shared, factor * expected, rtol=1e-5, atol=1e-7)


# Balancers whose weights are their own state (not a function of the last batch): an absent
# task's weight is left as it was (wing.balancing.base). The gradient aggregators and MT-CooL
# instead log weight 0 for a task absent from the batch, as their modules document.
@pytest.mark.parametrize(
    "name",
    ["ew", "fixed", "dwa", "gradnorm", "uncertainty"],
)
def test_an_absent_task_keeps_its_weight(name: str):
    model, batch, balancer = setup(name)
    train_step(model, batch, balancer)
    balancer.end_epoch({"wound": 0.5, "tissue": 0.8})
    train_step(model, batch, balancer)
    balancer.end_epoch({"wound": 0.4, "tissue": 0.7})
    before = balancer.weights()["tissue"]
    weights, _, _ = train_step(model, batch, balancer, present=("wound",))
    assert weights["tissue"] == before
    assert balancer.weights()["tissue"] == before


@pytest.mark.parametrize("name", NAMES)
def test_unknown_task_is_rejected(name: str):
    model, batch, balancer = setup(name)
    losses, step = model.step(batch)
    with pytest.raises(KeyError, match="depth"):
        balancer.backward({**losses, "depth": losses["wound"]}, step)


def run(name: str, steps: int = 3, seed: int = 0):
    model, batch, balancer = setup(name, seed)
    return [train_step(model, batch, balancer)[:2] for _ in range(steps)]


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name: str):
    first, second = run(name), run(name)
    for (weights_a, grads_a), (weights_b, grads_b) in zip(first, second, strict=True):
        assert weights_a == weights_b
        assert_same_grads(grads_a, grads_b)


@pytest.mark.parametrize("name", NAMES)
def test_state_survives_a_state_dict_round_trip(name: str):
    """3 steps (``end_epoch`` after each, so DWA has a history), a checkpoint as the trainer
    writes it (torch.save of ``state_dict``), a fresh balancer that loads it: the next step on
    the same parameters and batch is the same for both."""
    model, batch, balancer = setup(name)
    for _ in range(3):
        _, _, losses = train_step(model, batch, balancer)
        balancer.end_epoch(losses)
    buffer = io.BytesIO()
    torch.save(balancer.state_dict(), buffer)
    buffer.seek(0)
    restored = BALANCERS.get(name)(TASKS)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    twin = copy.deepcopy(model)

    torch.manual_seed(1)  # PCGrad draws a random projection order
    weights_a, grads_a, losses_a = train_step(model, batch, balancer)
    torch.manual_seed(1)
    weights_b, grads_b, losses_b = train_step(twin, batch, restored)
    assert losses_a == losses_b
    assert weights_a == weights_b
    assert_same_grads(grads_a, grads_b)
    assert balancer.weights() == restored.weights()
    assert_same_state(balancer.state_dict(), restored.state_dict())
    balancer.end_epoch(losses_a)  # and the next epoch's weights (DWA's loss history)
    restored.end_epoch(losses_b)
    assert balancer.weights() == restored.weights()
    assert_same_state(balancer.state_dict(), restored.state_dict())


@pytest.mark.parametrize("name", [n for n in NAMES if n != "mt_cool"])
def test_update_is_the_weighted_sum_of_task_gradients(name: str):
    """The shared update is sum_i w_i g_i with the weights ``backward`` returns (all but
    MT-CooL, whose gradient is taken at a perturbed point), so the logged weights are true."""
    model, batch, balancer = setup(name)
    reference = copy.deepcopy(model)
    task_grads = {}
    for task in TASKS:
        reference.zero_grad(set_to_none=True)
        reference.losses(batch)[1][task].backward()
        task_grads[task] = reference.shared_grad()
    weights, _, _ = train_step(model, batch, balancer)
    shared = torch.cat([p.grad.flatten() for p in model.trunk.parameters()])
    expected = sum(weights[task] * task_grads[task] for task in TASKS)
    assert_close(shared, expected, rtol=1e-5, atol=1e-6)


# --- the linear-quadratic problem of the defining properties --------------------------------


class Problem(nn.Module):
    """z = theta, head h_k = 1, L_k = h_k (a_k . z + z^T H_k z / 2): grad L_k = a_k + H_k theta."""

    def __init__(self, linear: torch.Tensor, hessians=None, theta=None):
        super().__init__()
        n = linear.shape[1]
        self.linear = linear.to(F64)
        self.hessians = torch.zeros(len(TASKS), n, n, dtype=F64) if hessians is None else hessians
        start = torch.zeros(n, dtype=F64) if theta is None else theta.to(F64)
        self.theta = nn.Parameter(start.clone())
        self.heads = nn.ParameterDict({t: nn.Parameter(torch.ones((), dtype=F64)) for t in TASKS})

    def loss(self, task: str, theta: torch.Tensor) -> torch.Tensor:
        i = TASKS.index(task)
        return self.linear[i] @ theta + theta @ self.hessians[i] @ theta / 2

    def gradient(self, task: str, theta: torch.Tensor) -> torch.Tensor:
        i = TASKS.index(task)
        return self.linear[i] + self.hessians[i] @ theta

    def step(self, present=TASKS):
        def losses():
            z = self.theta * 1.0  # the representation the heads read
            return z, {task: self.heads[task] * self.loss(task, z) for task in present}

        z, values = losses()
        step = Step([self.theta], {t: [self.heads[t]] for t in TASKS}, [self.theta], z)
        step.closure = lambda: losses()[1]
        return values, step


def shared_update(balancer: Balancer, problem: Problem, present=TASKS):
    """The balancer's update d of theta (its ``.grad``) and the weights it returned."""
    problem.zero_grad(set_to_none=True)
    losses, step = problem.step(present)
    weights = balancer.backward(losses, step)
    return problem.theta.grad.detach().clone(), weights


# --- the defining properties (each helper fails on equal weighting) -------------------------


def assert_plain_sum(factory: Factory) -> None:
    """Equal weighting: d = g_1 + g_2, weights 1."""
    d, weights = shared_update(factory(TASKS), Problem(CONFLICT))
    assert_close(d, CONFLICT.sum(0))
    assert weights == {"wound": 1.0, "tissue": 1.0}


FIXED = {"wound": 0.25, "tissue": 1.0}


def assert_fixed_combination(factory: Factory, weights=FIXED) -> None:
    """Fixed weights: d = sum_i w_i g_i with the configured w, at every step."""
    balancer = factory(TASKS)
    w = torch.tensor([weights[t] for t in TASKS], dtype=F64)
    for _ in range(2):
        d, used = shared_update(balancer, Problem(CONFLICT))
        assert_close(d, w @ CONFLICT)
        assert used == weights


def assert_kendall_optimum(factory: Factory, steps: int = 400) -> None:
    """Uncertainty weighting (Kendall et al. 2018): sum_i exp(-s_i) L_i + s_i / 2 is minimised
    at exp(s_i) = 2 L_i, so with constant losses (tissue larger and noisy: 2 and 6 in turn,
    mean 4) s_i -> log(2 L_i) and the weight exp(-s_i) of the noisier task is the smaller."""
    p = nn.Parameter(torch.ones(()))  # the losses are constants times a tiny model p = 1
    balancer = factory(TASKS)
    step = Step([p], {t: [] for t in TASKS}, [p])
    for k in range(steps):
        p.grad = None
        balancer.backward({"wound": 0.25 * p, "tissue": (2.0 if k % 2 else 6.0) * p}, step)
    weights = balancer.weights()
    assert weights["tissue"] < weights["wound"]
    for task, mean_loss in (("wound", 0.25), ("tissue", 4.0)):
        s, optimum = -math.log(weights[task]), math.log(2 * mean_loss)
        assert abs(s - optimum) < 0.1, (task, s, optimum)


def assert_dwa_softmax_of_loss_rates(factory: Factory, temperature: float = 2.0) -> None:
    """DWA (Liu et al. 2019, Eq. 1): w(t) = T softmax(r(t-1) / tau), r_i(t-1) = L_i(t-1) /
    L_i(t-2), from the epoch means of ``end_epoch``; w = 1 in the first two epochs."""
    balancer = factory(TASKS)
    epochs = [
        {"wound": 1.0, "tissue": 1.0},
        {"wound": 0.5, "tissue": 0.9},  # tissue's loss fell less: r = (0.5, 0.9)
        {"wound": 0.45, "tissue": 0.3},  # now wound's did: r = (0.9, 1/3)
    ]
    for epoch in range(1, 5):
        if epoch <= 2:
            expected = torch.ones(2, dtype=F64)
        else:
            previous, last = epochs[epoch - 3], epochs[epoch - 2]
            rates = torch.tensor([last[t] / previous[t] for t in TASKS], dtype=F64)
            expected = len(TASKS) * torch.softmax(rates / temperature, 0)
            slower = TASKS[int(rates.argmax())]
            assert balancer.weights()[slower] == max(balancer.weights().values())
        d, weights = shared_update(balancer, Problem(CONFLICT))
        assert_close(torch.tensor([weights[t] for t in TASKS], dtype=F64), expected)
        assert_close(d, expected @ CONFLICT)
        if epoch <= len(epochs):
            balancer.end_epoch(epochs[epoch - 1])


def weighted_norm_gap(model: Toy, batch, weights: dict[str, float]) -> float:
    """|G_1 - G_2| / mean G, G_i = w_i ||grad_W L_i|| at W, the trunk's last layer."""
    last = list(model.trunk[2].parameters())
    losses = model.losses(batch)[1]
    norms = {}
    for task in TASKS:
        grads = torch.autograd.grad(losses[task], last, retain_graph=True)
        norms[task] = weights[task] * float(torch.sqrt(sum((g**2).sum() for g in grads)))
    return abs(norms["wound"] - norms["tissue"]) / (sum(norms.values()) / 2)


def assert_equalised_gradient_norms(factory: Factory, steps: int = 300) -> None:
    """GradNorm with alpha = 0 (Chen et al. 2018, Eq. 2): the target of every G_i is the mean
    G, so the weighted gradient norms at W meet, measured here from the network's own
    gradients and the balancer's weights (tests/test_gradnorm.py reads last_grad_norms)."""
    torch.manual_seed(2)
    model, batch = Toy(tissue_scale=10.0), toy_batch(2)
    balancer = factory(TASKS)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    assert weighted_norm_gap(model, batch, balancer.weights()) > 0.5  # far apart at first
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        losses, step = model.step(batch)
        balancer.backward(losses, step)
        optimizer.step()
    assert weighted_norm_gap(model, batch, balancer.weights()) < 0.1


def assert_projects_conflicting_gradients(factory: Factory) -> None:
    """PCGrad (Yu et al. 2020, Alg. 1): g_i loses its component along g_j when g_i . g_j < 0
    and d is the sum of the projected gradients; for two tasks d . g_i >= 0."""
    g1, g2 = CONFLICT
    d, _ = shared_update(factory(TASKS), Problem(CONFLICT))
    assert (CONFLICT @ d >= -1e-9).all(), CONFLICT @ d
    projected = (g1 - (g1 @ g2) / (g2 @ g2) * g2) + (g2 - (g1 @ g2) / (g1 @ g1) * g1)
    assert_close(d, projected)  # = (2, 5)
    d, _ = shared_update(factory(TASKS), Problem(AGREE))
    assert_close(d, AGREE.sum(0))  # no conflict, nothing projected


def assert_non_conflicting(factory: Factory) -> None:
    """torchjd's non-conflicting property: d . g_i >= 0 for every task, even when the sum of
    the gradients conflicts with one of them."""
    d, _ = shared_update(factory(TASKS), Problem(CONFLICT))
    products = CONFLICT @ d
    assert (products >= -1e-6 * CONFLICT.norm() * d.norm()).all(), products
    assert d.norm() > 1e-6  # not the trivial zero update


def assert_minimum_norm_in_convex_hull(factory: Factory) -> None:
    """MGDA (Sener & Koltun 2018): d is the minimum-norm point of the convex hull of the task
    gradients; compared with a brute-force grid over the simplex."""
    d, _ = shared_update(factory(TASKS), Problem(CONFLICT))
    coefficients = torch.linalg.lstsq(CONFLICT.T, d[:, None]).solution.squeeze(1)
    assert_close(coefficients @ CONFLICT, d)
    assert (coefficients >= -1e-9).all() and abs(float(coefficients.sum()) - 1) < 1e-6
    grid = torch.linspace(0, 1, 100_001, dtype=F64)[:, None]
    smallest = (grid * CONFLICT[0] + (1 - grid) * CONFLICT[1]).norm(dim=1).min()
    assert abs(float(d.norm() / smallest) - 1) < 1e-3


def assert_best_worst_case_in_ball(factory: Factory, c: float = 0.4) -> None:
    """CAGrad (Liu et al. 2021): d maximises the worst task improvement min_i g_i . d over
    the ball ||d - g_0|| <= c ||g_0|| around the mean gradient g_0 (torchjd's form, without
    the paper's optional 1 / (1 + c) rescaling); c = 0 is the mean gradient. Brute force over
    the circle of the 2-D ball (the optimum of this piecewise-linear objective is on it)."""
    d, _ = shared_update(factory(TASKS), Problem(CONFLICT))
    mean = CONFLICT.mean(0)
    radius = c * mean.norm()
    assert float((d - mean).norm()) <= float(radius) * (1 + 1e-6) + 1e-9
    angles = torch.linspace(0, 2 * math.pi, 200_001, dtype=F64)
    circle = mean + radius * torch.stack([angles.cos(), angles.sin()], 1)
    best = (circle @ CONFLICT.T).min(1).values.max()
    worst_case = (CONFLICT @ d).min()
    assert float(worst_case) >= float(best) - 1e-4 * max(1.0, abs(float(best)))


def assert_nash_bargaining_solution(factory: Factory, max_norm: float = 1.0) -> None:
    """Nash-MTL (Navon et al. 2022, Alg. 1): d = sum_i alpha_i g_i with alpha > 0 solving
    G alpha = 1 / alpha, i.e. alpha_i (g_i . d) = 1 for every task, then scaled by k =
    min(1, max_norm / ||d||) (torchjd's clipping; 0 disables it), so alpha_i (g_i . d) = k^2.
    (For two tasks IMTL-G has the same direction; the scale is what tells them apart.)"""
    d, weights = shared_update(factory(TASKS), Problem(CONFLICT))
    alpha = torch.tensor([weights[t] for t in TASKS], dtype=F64)
    assert (alpha > 0).all(), alpha
    assert_close(alpha @ CONFLICT, d)
    products = alpha * (CONFLICT @ d)
    assert (products > 0).all(), products
    assert_close(products[0], products[1], rtol=1e-2, atol=0)
    k = math.sqrt(float(products.mean()))
    unclipped = float(d.norm()) / k  # ||J^T alpha|| of the bargaining solution itself
    expected = 1.0 if max_norm == 0 else min(1.0, max_norm / unclipped)
    assert abs(k - expected) < 1e-2, (k, expected)


def assert_equal_projections(factory: Factory) -> None:
    """IMTL-G (Liu et al. 2021): d has the same positive projection on every unit task
    gradient, d . g_i / ||g_i|| = const > 0, conflicting or not."""
    for gradients in (CONFLICT, AGREE):
        d, _ = shared_update(factory(TASKS), Problem(gradients))
        projections = gradients @ d / gradients.norm(dim=1)
        assert (projections > 0).all(), projections
        assert_close(projections[0], projections[1], rtol=1e-6, atol=0)


def assert_condition_number_one(factory: Factory) -> None:
    """Aligned-MTL (Senushkin et al. 2023): the task gradients are replaced by the nearest
    matrix (orthogonal Procrustes) whose rows are orthogonal with equal norm sigma_min(J),
    i.e. condition number 1: sigma_min U V^T for J = U S V^T; d is the mean of its rows."""
    d, _ = shared_update(factory(TASKS), Problem(CONFLICT))
    u, s, vh = torch.linalg.svd(CONFLICT, full_matrices=False)
    aligned = s.min() * u @ vh
    assert_close(aligned @ aligned.T, s.min() ** 2 * torch.eye(2, dtype=F64))
    assert_close(d, aligned.mean(0))


def assert_mean_without_conflict(factory: Factory) -> None:
    """UPGrad (Quinton & Rey 2024): without conflict every g_i is already in the dual cone, so
    d is the mean gradient (torchjd's default preference vector)."""
    d, weights = shared_update(factory(TASKS), Problem(AGREE))
    assert_close(d, AGREE.mean(0))
    assert weights == pytest.approx({"wound": 0.5, "tissue": 0.5})


def dd_gb_closed_form(gradients: torch.Tensor) -> torch.Tensor:
    """a_i = ||g_i|| h_i / ||h_i||, h_i = g_i less its components along the g_j it conflicts
    with (projected on the original g_j, so independent of task order)."""
    rows = []
    for i, g in enumerate(gradients):
        h = g.clone()
        for j, other in enumerate(gradients):
            if j != i and g @ other < 0:
                h = h - (g @ other) / (other @ other) * other
        rows.append(g.norm() / h.norm() * h)
    return torch.stack(rows)


def assert_aligned_rescaled_sum(factory: Factory) -> None:
    """DD-GB (this compendium's reading): the conflict-projected gradients, each rescaled to
    its raw norm, summed; the sum of the rows of diag(s) A J of ``aligned_combination``; the
    plain sum (weights 1) without conflict."""
    d, _ = shared_update(factory(TASKS), Problem(CONFLICT))
    assert_close(d, dd_gb_closed_form(CONFLICT).sum(0))
    projection, scale = aligned_combination(CONFLICT @ CONFLICT.T)
    assert_close(d, (scale[:, None] * (projection @ CONFLICT)).sum(0))
    d, weights = shared_update(factory(TASKS), Problem(AGREE))
    assert_close(d, AGREE.sum(0))
    assert weights == pytest.approx({"wound": 1.0, "tissue": 1.0})


def quadratic_problem() -> Problem:
    """L_k = (theta - c_k)^T H_k (theta - c_k) / 2 up to a constant: known Hessians H_k."""
    hessians = torch.stack(
        [torch.diag(torch.tensor([5.0, 0.5])), torch.tensor([[1.0, 0.3], [0.3, 2.0]])]
    ).to(F64)
    centres = torch.tensor([[0.0, 0.0], [2.0, 1.0]], dtype=F64)
    linear = -torch.einsum("kij,kj->ki", hessians, centres)
    return Problem(linear, hessians, theta=torch.tensor([1.0, -1.0]))


def assert_descends_at_the_perturbed_point(factory: Factory, radius: float = 0.1) -> None:
    """MT-CooL (this compendium's reading; SAM's two steps on the shared parameters): the
    update is the active task's gradient at theta + e, e = radius g / ||g||, and one SGD step
    with it lowers that task's loss at the perturbed point more than a plain SGD step."""
    eta = 0.05
    problem = quadratic_problem()
    theta = problem.theta.detach().clone()
    d, weights = shared_update(factory(TASKS), problem)
    g = problem.gradient("wound", theta)  # step 0: wound's turn
    e = radius * g / g.norm()
    assert_close(d, problem.gradient("wound", theta + e))
    assert weights == {"wound": 1.0, "tissue": 0.0}
    assert problem.heads["tissue"].grad is None
    assert_close(problem.theta.detach(), theta, rtol=0, atol=1e-15)  # perturbation undone
    cool = problem.loss("wound", theta - eta * d + e)
    plain = problem.loss("wound", theta - eta * g + e)
    assert cool < plain - 1e-6, (float(cool), float(plain))


def assert_plain_descent_on_the_active_task(factory: Factory) -> None:
    """MT-CooL with radius 0: plain gradient descent on the active task alone."""
    problem = quadratic_problem()
    theta = problem.theta.detach().clone()
    d, weights = shared_update(factory(TASKS), problem)
    assert_close(d, problem.gradient("wound", theta), rtol=0, atol=1e-15)
    assert weights == {"wound": 1.0, "tissue": 0.0}
    assert problem.heads["tissue"].grad is None


def assert_alternating_turns(factory: Factory, period: int = 2, radius: float = 0.05) -> None:
    """MT-CooL: task k = tasks[(step // period) % T] is active (weight 1, its gradient at
    its perturbed point, the only head with a gradient); a turn whose task is absent falls to
    the first task present."""
    problem = quadratic_problem()
    theta = problem.theta.detach().clone()
    balancer = factory(TASKS)
    for k in range(4 * period):
        turn = TASKS[(k // period) % len(TASKS)]
        d, weights = shared_update(balancer, problem)
        assert weights == {t: float(t == turn) for t in TASKS}, (k, weights)
        g = problem.gradient(turn, theta)
        assert_close(d, problem.gradient(turn, theta + radius * g / g.norm()))
        assert all((problem.heads[t].grad is None) == (t != turn) for t in TASKS)
    for _ in range(period):  # the next turn is wound's; tissue's follows, without its label
        shared_update(balancer, problem)
    _, weights = shared_update(balancer, problem, present=("wound",))
    assert weights == {"wound": 1.0, "tissue": 0.0}


def registered(name: str, **options) -> Factory:
    return functools.partial(BALANCERS.get(name), **options)


# (registered name, property helper, factory, helper options)
PROPERTIES = [
    ("fixed", assert_fixed_combination, registered("fixed", weights=FIXED), {}),
    ("uncertainty", assert_kendall_optimum, registered("uncertainty", learning_rate=0.05), {}),
    ("dwa", assert_dwa_softmax_of_loss_rates, registered("dwa", temperature=2.0), {}),
    (
        "dwa",
        assert_dwa_softmax_of_loss_rates,
        registered("dwa", temperature=0.5),
        {"temperature": 0.5},
    ),
    (
        "gradnorm",
        assert_equalised_gradient_norms,
        registered("gradnorm", alpha=0.0, learning_rate=0.05),
        {},
    ),
    ("pcgrad", assert_projects_conflicting_gradients, registered("pcgrad"), {}),
    ("pcgrad", assert_non_conflicting, registered("pcgrad"), {}),
    ("mgda", assert_minimum_norm_in_convex_hull, registered("mgda"), {}),
    ("mgda", assert_non_conflicting, registered("mgda"), {}),
    ("cagrad", assert_best_worst_case_in_ball, registered("cagrad"), {"c": 0.4}),
    ("cagrad", assert_best_worst_case_in_ball, registered("cagrad", c=0.0), {"c": 0.0}),
    ("nash_mtl", assert_nash_bargaining_solution, registered("nash_mtl"), {}),
    (
        "nash_mtl",
        assert_nash_bargaining_solution,
        registered("nash_mtl", max_norm=0.0),
        {"max_norm": 0.0},
    ),
    ("nash_mtl", assert_non_conflicting, registered("nash_mtl"), {}),
    ("imtl_g", assert_equal_projections, registered("imtl_g"), {}),
    ("imtl_g", assert_non_conflicting, registered("imtl_g"), {}),
    ("aligned_mtl", assert_condition_number_one, registered("aligned_mtl"), {}),
    ("upgrad", assert_non_conflicting, registered("upgrad"), {}),
    ("upgrad", assert_mean_without_conflict, registered("upgrad"), {}),
    ("dd_gb", assert_aligned_rescaled_sum, registered("dd_gb"), {}),
    ("dd_gb", assert_non_conflicting, registered("dd_gb"), {}),
    (
        "mt_cool",
        assert_descends_at_the_perturbed_point,
        registered("mt_cool", radius=0.1),
        {"radius": 0.1},
    ),
    ("mt_cool", assert_plain_descent_on_the_active_task, registered("mt_cool", radius=0.0), {}),
    ("mt_cool", assert_alternating_turns, registered("mt_cool", period=2), {"period": 2}),
    (
        "mt_cool",
        assert_alternating_turns,
        registered("mt_cool", period=1, radius=0.0),
        {"period": 1, "radius": 0.0},
    ),
]


def case_id(name, helper, options) -> str:
    suffix = "".join(f"-{k}={v}" for k, v in options.items())
    return f"{name}-{helper.__name__.removeprefix('assert_')}{suffix}"


CASES = [
    pytest.param(name, helper, factory, options, id=case_id(name, helper, options))
    for name, helper, factory, options in PROPERTIES
]


def test_every_method_has_a_defining_property():
    assert {name for name, *_ in PROPERTIES} | {"ew"} == set(NAMES)


def test_equal_weighting_is_the_plain_sum():
    assert_plain_sum(registered("ew"))


@pytest.mark.parametrize(("name", "helper", "factory", "options"), CASES)
def test_defining_property(name: str, helper, factory: Factory, options: dict):
    assert isinstance(factory(TASKS), BALANCERS.get(name))
    helper(factory, **options)


@pytest.mark.parametrize(("name", "helper", "factory", "options"), CASES)
def test_equal_weighting_fails_the_property(name: str, helper, factory: Factory, options: dict):
    """The companion: the helper can fail, and does for the conventional baseline."""
    with pytest.raises(AssertionError):
        helper(EqualWeighting, **options)


# --- DD-GB's building block, on random conflicting pairs ------------------------------------


def test_dd_gb_aligned_rows_do_not_conflict_and_keep_the_norm_ratios():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        gradients = torch.randn(2, 5, generator=g, dtype=F64)
        if gradients[0] @ gradients[1] > 0:
            gradients[1] = -gradients[1]
        gradients[1] *= 0.1 + 5 * torch.rand((), generator=g, dtype=F64)
        projection, scale = aligned_combination(gradients @ gradients.T)
        rows = scale[:, None] * (projection @ gradients)
        assert rows[0] @ rows[1] >= -1e-9 * rows.norm() ** 2  # aligned: no conflict left
        assert abs(float(rows[0] @ gradients[1])) < 1e-9 * float(gradients.norm() ** 2)
        assert abs(float(rows[1] @ gradients[0])) < 1e-9 * float(gradients.norm() ** 2)
        assert_close(rows.norm(dim=1), gradients.norm(dim=1))  # so the ratios are the raw ones
        assert_close(rows, dd_gb_closed_form(gradients))
    agree = AGREE @ AGREE.T
    assert_close(DDGBWeighting()(agree), torch.ones(2, dtype=F64))
    projection, scale = aligned_combination(agree)
    assert_close(projection, torch.eye(2, dtype=F64))
    assert_close(scale, torch.ones(2, dtype=F64))


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="temperature"):
        DynamicWeightAverage(TASKS, temperature=0.0)
    with pytest.raises(ValueError, match="radius"):
        MTCooL(TASKS, radius=-1.0)
    with pytest.raises(ValueError, match="two or more"):
        CAGrad(("wound",))
    with pytest.raises(ValueError, match="non-negative"):
        FixedWeighting(TASKS, {"wound": -1.0})
    with pytest.raises(ValueError, match="two or more"):
        GradNorm(("wound",))
