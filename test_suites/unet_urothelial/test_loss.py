"""The Dice + cross-entropy loss: its value, its gradient, and that descending it helps; on fixed
batches every grading shares, and on batches drawn afresh for each grading (from a seed only the
grader knows), so the loss cannot match fixed answers without computing its definition."""

import numpy as np

from grader.execution import Array, call, descend_call
from grader.suites import Drawn, Failure, register, register_drawn

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


@register(TESTS, id="loss.dice_ce_value", name="dice_ce_loss: value matches the definition", points=1, tag="loss",
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


@register(TESTS, id="loss.dice_ce_gradient", name="dice_ce_loss: differentiable, gradient matches the definition's",
          points=2, tag="loss", calls=[grad_call] + perturbed,
          hint="Build the loss from torch operations on the logits (softmax, not argmax; no .detach(), .item() or "
               "NumPy in between) so autograd can differentiate it.")
def _gradient(answers):
    value = answers.value("l.grad", "differentiating dice_ce_loss")
    grads = np.asarray(value["grads"][0], np.float64) if isinstance(value, dict) and value.get("grads") else None
    if grads is None or grads.shape != SMALL.shape:
        raise Failure("no gradient reached the logits")
    finite = np.zeros(SMALL.shape)
    for k, index in enumerate(np.ndindex(SMALL.shape)):
        plus = _scalar(answers.value(perturbed[2 * k].id, "dice_ce_loss"), "dice_ce_loss")
        minus = _scalar(answers.value(perturbed[2 * k + 1].id, "dice_ce_loss"), "dice_ce_loss")
        finite[index] = (plus - minus) / (2 * EPS)
    if not np.allclose(grads, finite, rtol=2e-2, atol=2e-3):
        worst = float(np.nanmax(np.abs(grads - finite)))
        raise Failure(f"the gradient autograd computes differs from finite differences by up to {worst:.4f}: "
                      "part of the loss is not built from differentiable torch operations")
    if not np.allclose(grads, definition_gradient(SMALL, SMALL_TARGET), rtol=2e-2, atol=2e-3):
        raise Failure("the gradient is consistent with your loss's values, but not with the definition's: "
                      "check each term of the loss (see loss.dice_ce_value)")


descend = descend_call("l.descend", "dice_ce_loss", LOGITS, TARGET, steps=20, lr=20.0)


def _check_descent(final, logits, target, lr, where=""):
    """The logits after 20 steps through the submission's loss must be where the same steps on the
    definition lead: a loss with the right gradient follows that path; returning logits from anywhere
    else (a shortcut to low loss included) does not."""
    final = np.asarray(final, np.float64)
    if final.shape != logits.shape or not np.all(np.isfinite(final)):
        raise Failure(f"gradient descent through dice_ce_loss{where} produced non-finite logits or a wrong shape")
    ours = definition_descent(logits, target, 20, lr)
    travelled = float(np.abs(ours - logits).max())
    off = float(np.abs(final - ours).max())
    if not off <= 0.05 * travelled + 1e-3:
        before, after, reached = formula(logits, target), formula(final, target), formula(ours, target)
        raise Failure(f"20 descent steps on your loss{where} led elsewhere than the same steps on the definition "
                      f"(the true loss went from {before:.3f} to {after:.3f}; the definition's steps reach "
                      f"{reached:.3f}): its gradient points another way, or a term is missing")


@register(TESTS, id="loss.dice_ce_descends", name="dice_ce_loss: gradient descent follows the definition's path",
          points=1, tag="loss", calls=[descend],
          hint="If the loss does not fall as it should, its gradient points the wrong way or is missing a term.")
def _descends(answers):
    _check_descent(answers.value("l.descend", "20 steps of gradient descent through dice_ce_loss"), LOGITS, TARGET, 20.0)


def _draw_batch(rng, batch=(1, 3), classes=(2, 5), side=(1, 12)):
    """Float64 logits (N, C, H, W) of a random scale and int64 targets (N, H, W) in which some
    classes may be missing."""
    n, c = int(rng.integers(batch[0], batch[1] + 1)), int(rng.integers(classes[0], classes[1] + 1))
    h, w = (int(x) for x in rng.integers(side[0], side[1] + 1, 2))
    logits = rng.normal(size=(n, c, h, w)) * rng.uniform(0.2, 4.0)
    present = np.flatnonzero(rng.random(c) < 0.85)
    target = rng.choice(present if present.size else np.arange(c), size=(n, h, w))
    return logits, target.astype(np.int64)


def definition_gradient(logits, target):
    """The gradient of `formula` with respect to the logits, in float64: cross-entropy's (p - t) / M
    over the M pixels, and the soft Dice's through the softmax."""
    shifted = logits - logits.max(1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    t = np.moveaxis(np.eye(logits.shape[1])[target], -1, 1)
    axes, classes, pixels = (0, 2, 3), logits.shape[1], target.size
    inter, total = (p * t).sum(axes), p.sum(axes) + t.sum(axes) + 1
    shape = (1, classes, 1, 1)
    d_dice = (2 * t * total.reshape(shape) - (2 * inter + 1).reshape(shape)) / total.reshape(shape) ** 2
    by_prob = -d_dice / classes  # d(1 - mean Dice) / dp
    dice_part = p * (by_prob - (p * by_prob).sum(1, keepdims=True))
    return (p - t) / pixels + dice_part


def definition_descent(logits, target, steps, lr):
    """The logits after `steps` of plain gradient descent on the definition itself."""
    for _ in range(steps):
        logits = logits - lr * definition_gradient(logits, target)
    return logits


DRAWN_HINT = ("These batches are drawn afresh for every grading: 1 to 3 images, 2 to 5 classes, any height and "
              "width, some classes missing from the target. Compute the loss from the logits you are given.")


@register_drawn(TESTS, id="loss.drawn_value", name="dice_ce_loss: value on batches drawn for this grading",
                points=2, tag="loss", hint=DRAWN_HINT)
def _drawn_value(rng):
    cases = [_draw_batch(rng) for _ in range(4)]
    calls = [call(f"l.drawn_value{i}", "dice_ce_loss", Array(logits, tensor=True), Array(target, tensor=True),
                  timeout=60) for i, (logits, target) in enumerate(cases)]

    def check(answers):
        for (logits, target), c in zip(cases, calls):
            got = _scalar(answers.value(c.id, "dice_ce_loss(logits, target)"), "dice_ce_loss")
            if not np.isclose(got, formula(logits, target), rtol=1e-4, atol=1e-5):
                raise Failure(f"dice_ce_loss gave {got:.5f} on a batch of logits of shape {logits.shape}; the "
                              "definition gives a different value. Check each term separately: the "
                              "cross-entropy, and the Dice part with its smoothing, for any number of classes")

    return Drawn(tuple(calls), check)


@register_drawn(TESTS, id="loss.drawn_gradient", name="dice_ce_loss: gradient matches the definition's, on a "
                "batch drawn for this grading", points=1, tag="loss", hint=DRAWN_HINT)
def _drawn_gradient(rng):
    logits, target = _draw_batch(rng, batch=(1, 2), classes=(2, 4), side=(2, 4))
    grad = call("l.drawn_grad", "dice_ce_loss", Array(logits, tensor=True, grad=True), Array(target, tensor=True),
                grad=True, timeout=60)

    def check(answers):
        value = answers.value("l.drawn_grad", "differentiating dice_ce_loss")
        got = np.asarray(value["grads"][0]) if isinstance(value, dict) and value.get("grads") else None
        if got is None or got.shape != logits.shape:
            raise Failure("no gradient reached the logits")
        expected = definition_gradient(logits, target)
        if not np.allclose(got, expected, rtol=1e-3, atol=1e-4):
            worst = float(np.abs(got - expected).max())
            raise Failure(f"on logits of shape {logits.shape}, the gradient of dice_ce_loss differs from the "
                          f"definition's by up to {worst:.4f}: a term is missing, detached or computed differently")

    return Drawn((grad,), check)


@register_drawn(TESTS, id="loss.drawn_descends", name="dice_ce_loss: gradient descent lowers the true loss, on "
                "batches drawn for this grading", points=1, tag="loss", hint=DRAWN_HINT)
def _drawn_descends(rng):
    cases = [_draw_batch(rng, batch=(1, 2), classes=(2, 5), side=(3, 10)) for _ in range(5)]
    rates = [logits.shape[0] * logits.shape[2] * logits.shape[3] / 3 for logits, _ in cases]  # a mean: lr ~ size
    calls = [descend_call(f"l.drawn_descend{i}", "dice_ce_loss", logits, target, steps=20, lr=lr)
             for i, ((logits, target), lr) in enumerate(zip(cases, rates))]

    def check(answers):
        for (logits, target), lr, c in zip(cases, rates, calls):
            final = answers.value(c.id, "20 steps of gradient descent through dice_ce_loss")
            _check_descent(final, logits, target, lr, f" on logits of shape {logits.shape}")

    return Drawn(tuple(calls), check)
