import numpy as np
import pytest
import torch

from reference.config import ConfigError
from reference.losses import LOSSES, dice_ce_loss, get_loss


def _formula(logits: np.ndarray, target: np.ndarray) -> float:
    """CONTRACT.md's definition, written out in NumPy."""
    shifted = logits - logits.max(1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    k = logits.shape[1]
    t = np.moveaxis(np.eye(k)[target], -1, 1)
    ce = -np.log(np.take_along_axis(p, target[:, None], 1)).mean()
    dice = [(2 * (p[:, c] * t[:, c]).sum() + 1) / (p[:, c].sum() + t[:, c].sum() + 1) for c in range(k)]
    return ce + 1 - float(np.mean(dice))


def test_value_matches_the_formula():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5, 6))
    target = rng.integers(0, 3, (2, 5, 6))
    value = dice_ce_loss(torch.from_numpy(logits), torch.from_numpy(target))
    assert value.ndim == 0
    assert float(value) == pytest.approx(_formula(logits, target), rel=1e-10)


def test_gradient_matches_finite_differences():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    assert torch.autograd.gradcheck(lambda x: dice_ce_loss(x, target), (logits,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_falls_under_a_few_optimiser_steps(name):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    loss_fn = get_loss(name)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    values = []
    for _ in range(10):
        loss = loss_fn(logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < 0.7 * values[0]


def test_unknown_loss_lists_the_choices():
    with pytest.raises(ConfigError, match="choose one of ce, dice, focal, ce_dice"):
        get_loss("bce")
