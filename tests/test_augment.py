"""DiffAugment for discriminator inputs (zoo/contract/augment.py)."""

from __future__ import annotations

import pytest
import torch

from zoo.contract.augment import augment, cutout, parse_policy, translation
from zoo.errors import UsageError


def test_translation_shifts_whole_images_and_fills_the_background():
    torch.manual_seed(0)
    x = torch.full((64, 1, 16, 16), -1.0)
    x[:, :, 7, 7] = 1.0  # one bright pixel per image
    y = translation(x)
    assert y.shape == x.shape
    assert torch.all((y == 1).flatten(1).sum(1) == 1)  # moved, never lost (shift <= 2 px)
    rows, cols = torch.nonzero(y[:, 0] == 1)[:, 1:].T
    assert rows.min() >= 5 and rows.max() <= 9 and cols.min() >= 5 and cols.max() <= 9
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # shifts differ between images


def test_cutout_blanks_one_square_per_image():
    torch.manual_seed(0)
    y = cutout(torch.ones(32, 2, 16, 16))
    blank = (y == 0).all(dim=1).flatten(1).sum(1)
    assert torch.all((blank > 0) & (blank <= 64))  # an 8x8 square, clipped at the borders
    assert torch.all((y == 0) | (y == 1))


def test_gradients_flow_through_the_augmentations():
    x = torch.randn(4, 1, 8, 8, requires_grad=True)
    augment(x, ("translation", "cutout")).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_policies_are_checked():
    assert parse_policy("translation, cutout") == ("translation", "cutout")
    assert parse_policy("") == ()
    with pytest.raises(UsageError, match="unknown augment policy 'color'"):
        parse_policy("color")
