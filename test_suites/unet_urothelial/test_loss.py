"""The Dice + cross-entropy loss: its value, its gradient, and that descending it helps."""

import numpy as np

from grader.execution import Array, call, descend_call
from grader.suites import Failure, register

TESTS = []
_rng = np.random.default_rng(77)
LOGITS = _rng.normal(size=(2, 3, 5, 6))
TARGET = _rng.integers(0, 3, (2, 5, 6))
SMALL = _rng.normal(size=(1, 3, 2, 2))
SMALL_TARGET = np.array([[[0, 1], [2, 2]]])
EPS = 1e-4


def formula(logits, target):
    """CONTRACT.md's definition, computed here in float64."""
    shifted = logits - logits.max(1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    t = np.moveaxis(np.eye(logits.shape[1])[target], -1, 1)
    ce = -np.log(np.take_along_axis(p, target[:, None], 1)).mean()
    axes = (0, 2, 3)
    dice = (2 * (p * t).sum(axes) + 1) / (p.sum(axes) + t.sum(axes) + 1)
    return ce + 1 - dice.mean()


def _scalar(value, what):
    array = np.asarray(value)
    if array.size != 1:
        raise Failure(f"{what} returned an array of shape {array.shape}; a loss is a single number (a 0-d tensor)")
    return float(array.reshape(()))


value_call = call("l.value", "dice_ce_loss", Array(LOGITS, tensor=True), Array(TARGET, tensor=True), timeout=60)


@register(TESTS, id="loss.dice_ce_value", name="dice_ce_loss: value matches the definition", points=3, tag="loss",
          calls=[value_call],
          hint="Cross-entropy plus 1 minus the soft Dice (softmax probabilities, one-hot targets, smoothing 1), "
               "averaged over classes with sums over the batch and all pixels.")
def _value(answers):
    got = _scalar(answers.value("l.value", "dice_ce_loss(logits, target)"), "dice_ce_loss")
    expected = formula(LOGITS, TARGET)
    if not np.isclose(got, expected, rtol=1e-4, atol=1e-5):
        raise Failure(f"dice_ce_loss gave {got:.5f} on a random batch; the definition gives a different value. "
                      "Check each term separately: the cross-entropy, and the Dice part with its smoothing")


grad_call = call("l.grad", "dice_ce_loss", Array(SMALL, tensor=True, grad=True), Array(SMALL_TARGET, tensor=True),
                 grad=True, timeout=60)
perturbed = []
for index in np.ndindex(SMALL.shape):
    for sign in (1, -1):
        shifted = SMALL.copy()
        shifted[index] += sign * EPS
        perturbed.append(call(f"l.fd{'_'.join(map(str, index))}_{'p' if sign > 0 else 'm'}", "dice_ce_loss",
                              Array(shifted, tensor=True), Array(SMALL_TARGET, tensor=True), timeout=30))


@register(TESTS, id="loss.dice_ce_gradient", name="dice_ce_loss: differentiable, gradient matches finite differences",
          points=3, tag="loss", calls=[grad_call] + perturbed,
          hint="Build the loss from torch operations on the logits (softmax, not argmax; no .detach(), .item() or "
               "NumPy in between) so autograd can differentiate it.")
def _gradient(answers):
    value = answers.value("l.grad", "differentiating dice_ce_loss")
    grads = np.asarray(value["grads"][0]) if isinstance(value, dict) and value.get("grads") else None
    if grads is None or grads.shape != SMALL.shape:
        raise Failure("no gradient reached the logits")
    finite = np.zeros(SMALL.shape)
    for k, index in enumerate(np.ndindex(SMALL.shape)):
        plus = _scalar(answers.value(perturbed[2 * k].id, "dice_ce_loss"), "dice_ce_loss")
        minus = _scalar(answers.value(perturbed[2 * k + 1].id, "dice_ce_loss"), "dice_ce_loss")
        finite[index] = (plus - minus) / (2 * EPS)
    if not np.allclose(grads, finite, rtol=2e-2, atol=2e-3):
        worst = float(np.abs(grads - finite).max())
        raise Failure(f"the gradient autograd computes differs from finite differences by up to {worst:.4f}: "
                      "part of the loss is not built from differentiable torch operations")


descend = descend_call("l.descend", "dice_ce_loss", LOGITS, TARGET, steps=20, lr=20.0)


@register(TESTS, id="loss.dice_ce_descends", name="dice_ce_loss: gradient descent on it lowers the true loss",
          points=2, tag="loss", calls=[descend],
          hint="If the loss does not fall, its gradient points the wrong way or is missing a term.")
def _descends(answers):
    final = np.asarray(answers.value("l.descend", "20 steps of gradient descent through dice_ce_loss"), np.float64)
    if final.shape != LOGITS.shape or not np.all(np.isfinite(final)):
        raise Failure("gradient descent through dice_ce_loss produced non-finite logits")
    before, after = formula(LOGITS, TARGET), formula(final, TARGET)
    if not after < 0.5 * before:
        raise Failure(f"20 descent steps on your loss moved the true loss only from {before:.3f} to {after:.3f}")
