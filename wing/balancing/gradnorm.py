"""GradNorm (Chen, Badrinarayanan, Lee, Rabinovich; ICML 2018, arXiv 1711.02257).

WING-MTL balances its two tasks with GradNorm; this is the project's own implementation
because the algorithm's exact form is the object of study (no maintained library ships it).
With W the last shared layer, T tasks and w_i(0) = 1, each step:

    G_i    = || grad_W (w_i L_i) ||_2 = w_i || grad_W L_i ||_2          (Eq. 1-2)
    r_i    = (L_i / L_i(0)) / mean_j (L_j / L_j(0))                       (inverse rate)
    L_grad = sum_i | G_i - stopgrad(mean_j G_j * r_i ** alpha) |          (Eq. 2)
    w     <- optimiser step on d L_grad / d w only;  w <- T w / sum(w)

and the network is updated by d(sum_i w_i L_i)/d theta only. With partial labels only the
tasks present in a batch take part (a batch with one task leaves the weights unchanged).
L_i(0) is set by ``start`` before the first step: the trainer measures each task's mean
loss over fixed labelled batches (``train.initial_loss_batches``), so it neither depends on
which task the first batches happen to hold nor rests on the one or two labelled images of
a partially labelled batch. Only for a task that ``start`` did not provide (it was never
called, or with ``initial_loss_batches: 0``) does L_i(0) fall back to the paper's rule, the
task's loss on the first batch that contains it.
Two consequences shape the code:
(1) the per-task norms ||grad_W L_i|| do not depend on w, so d L_grad / d w is computed by
``torch.autograd.grad(L_grad, w)`` on a tiny graph, with no ``create_graph`` and no
second-order terms leaking into the network's gradients (the pitfall of popular versions);
(2) the network's gradients are assembled from per-task passes that are needed anyway:
each task's loss is back-propagated once to the shared representation z (and its head),
grad_W L_i is a short pass from z to W, and the trunk receives one backward of
sum_i w_i dL_i/dz. Nothing is traversed more often than by equal weighting, so a GradNorm
step costs about an equal-weighting step (``bench/gradnorm_step.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from wing.balancing.base import Balancer, OwnOptimiser


class GradNorm(OwnOptimiser, Balancer):
    family = "loss weighting"

    def __init__(self, tasks: Sequence[str], alpha: float = 1.5, learning_rate: float = 0.025):
        super().__init__(tasks)
        if len(self.tasks) < 2:
            raise ValueError("GradNorm balances two or more tasks")
        self.alpha = float(alpha)
        self.task_weights = torch.nn.Parameter(torch.ones(len(self.tasks)))
        self.optimizer = torch.optim.Adam([self.task_weights], lr=learning_rate)
        self.initial_losses: dict[str, float] = {}
        self.last_grad_norms: dict[str, float] = {}

    def start(self, initial_losses):
        """Set L_i(0) (Eq. 2's loss ratios) from losses measured before the first step."""
        unknown = set(initial_losses) - set(self.tasks)
        if unknown:
            raise KeyError(f"initial losses for unknown tasks {sorted(unknown)}")
        self.initial_losses = {t: max(float(v), 1e-12) for t, v in initial_losses.items()}

    def get_extra_state(self) -> dict:
        return {**super().get_extra_state(), "initial_losses": dict(self.initial_losses)}

    def set_extra_state(self, state: dict) -> None:
        super().set_extra_state(state)
        # Keyed by this balancer's own task-name objects, as ``start`` keys them: pickle
        # writes a string once per object, so a checkpoint of a resumed run (which also holds
        # the tasks) is then the same bytes as one of an uninterrupted run.
        own = {task: task for task in self.tasks}
        self.initial_losses = {own.get(t, t): v for t, v in state["initial_losses"].items()}

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.task_weights.detach().tolist(), strict=True))

    def backward(self, losses, step):
        present = self.present(losses)
        representation = step.representation
        index = torch.tensor([self.tasks.index(t) for t in present])
        used = self.task_weights.detach().clone()
        logs = dict(zip(self.tasks, used.tolist(), strict=True))
        weights = [used[i] for i in index.tolist()]
        last = [p for p in step.last_shared_parameters if p.requires_grad]
        last_ids = {id(p) for p in last}
        heads = [p for t in self.tasks for p in step.task_parameters[t] if p.requires_grad]
        trunk = [p for p in step.shared_parameters if p.requires_grad and id(p) not in last_ids]

        if representation is not None:
            # One pass per task through its loss and head, down to the shared representation
            # z (a tensor, or a tuple of tensors when it is several: a cut of the network,
            # see wing.models.base); from there grad_W L_i is a short pass from z to W, and
            # the trunk gets one backward of sum_i w_i dL_i/dz. Nothing is traversed more
            # often than in EW.
            z = (
                tuple(representation)
                if isinstance(representation, list | tuple)
                else (representation,)
            )
            per_task = [
                torch.autograd.grad(losses[t], [*z, *heads], retain_graph=True, allow_unused=True)
                for t in present
            ]
            task_grads = [
                _through(z, grads[: len(z)], last, retain_graph=True) for grads in per_task
            ]
            total = [_weighted_sum([g[k] for g in per_task], weights) for k in range(len(z))]
            reached = [(zk, tk) for zk, tk in zip(z, total, strict=True) if tk is not None]
            if trunk and reached:
                torch.autograd.backward(
                    [zk for zk, _ in reached], grad_tensors=[tk for _, tk in reached], inputs=trunk
                )
            _accumulate(heads, [grads[len(z) :] for grads in per_task], weights)
        else:
            # Without a representation: grad_W L_i through heads and W, then one backward of
            # sum_i w_i L_i that skips W.
            task_grads = [
                torch.autograd.grad(losses[t], last, retain_graph=True, allow_unused=True)
                for t in present
            ]
            total = sum(w * losses[t] for w, t in zip(weights, present, strict=True))
            torch.autograd.backward(total, inputs=trunk + heads)
        _accumulate(last, task_grads, weights)
        # G_i and r_i are the batch's, over all data-parallel processes: grad_W L_i and L_i
        # are means over them (self.reduce; the trainer reduces the network's .grad).
        flat = [g for grads in task_grads for g in grads]
        reduced = self.reduce([*flat, *(losses[t].detach() for t in present)])
        task_grads = [reduced[k * len(last) : (k + 1) * len(last)] for k in range(len(present))]
        loss_values = dict(zip(present, (float(v) for v in reduced[len(flat) :]), strict=True))
        norms = torch.stack(
            [
                torch.sqrt(sum((g.detach() ** 2).sum() for g in grads if g is not None))
                for grads in task_grads
            ]
        ).to(self.task_weights.device)  # T numbers, beside the task weights (CPU or GPU)

        # The weights: d L_grad / d w only (Eq. 2), then renormalise to sum T.
        for t in present:  # fallback: L_i(0) not set by start()
            self.initial_losses.setdefault(t, max(loss_values[t], 1e-12))
        if len(present) >= 2:
            ratios = torch.tensor(
                [loss_values[t] / self.initial_losses[t] for t in present],
                device=self.task_weights.device,
            )
            inverse_rate = ratios / ratios.mean()
            grad_norms = self.task_weights[index] * norms
            target = (grad_norms.mean() * inverse_rate**self.alpha).detach()
            gradnorm_loss = (grad_norms - target).abs().sum()
            (self.task_weights.grad,) = torch.autograd.grad(gradnorm_loss, [self.task_weights])
            self.optimizer.step()
            with torch.no_grad():
                # Safeguard (not in the paper): keep weights positive before renormalising.
                self.task_weights.clamp_(min=1e-4)
                self.task_weights.mul_(len(self.tasks) / self.task_weights.sum())
        self.last_grad_norms = {
            t: float(used[i] * n)
            for i, t, n in zip(index.tolist(), present, norms.tolist(), strict=True)
        }
        return logs


def _weighted_sum(grads, weights) -> torch.Tensor | None:
    """sum_i w_i g_i over the g_i that are not None (None when all are)."""
    parts = [w * g for w, g in zip(weights, grads, strict=True) if g is not None]
    return torch.stack(parts).sum(0) if parts else None


def _through(outputs, grad_outputs, inputs, retain_graph: bool):
    """Vector-Jacobian product of ``outputs`` (with their incoming gradients, None = not
    reached) onto ``inputs``; None for an input no reached output depends on."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if g is not None]
    if not pairs:
        return [None] * len(inputs)
    return torch.autograd.grad(
        [o for o, _ in pairs],
        inputs,
        grad_outputs=[g for _, g in pairs],
        retain_graph=retain_graph,
        allow_unused=True,
    )


def _accumulate(parameters, task_grads, weights) -> None:
    """parameter.grad += sum_i w_i g_i over the tasks whose gradient reaches it."""
    for j, parameter in enumerate(parameters):
        parts = [
            w * grads[j]
            for w, grads in zip(weights, task_grads, strict=True)
            if grads[j] is not None
        ]
        if parts:
            grad = torch.stack(parts).sum(0)
            parameter.grad = grad if parameter.grad is None else parameter.grad + grad
