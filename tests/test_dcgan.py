from __future__ import annotations

import pytest
import torch

from zoo.errors import UsageError
from zoo.plugins.dcgan import Discriminator, Generator, Layout, layout_for


@pytest.mark.parametrize(
    ("size", "layout", "plan"),
    [
        (16, "fit", Layout(4, 2)),
        (28, "fit", Layout(7, 2)),
        (32, "fit", Layout(4, 3)),
        (48, "fit", Layout(6, 3)),
        (64, "fit", Layout(4, 4)),
        (28, "odd", Layout(4, 3, odd=True)),  # 4 -> 7 -> 14 -> 28: as deep and wide as 32
        (28, "pad", Layout(4, 3, pad=2)),  # the 32x32 nets; G crops, D pads 2 pixels
        (56, "pad", Layout(4, 4, pad=4)),
        (32, "odd", Layout(4, 3)),  # sizes of 4 times a power of two need neither
        (48, "pad", Layout(6, 3)),
    ],
)
def test_networks_reach_the_image_size(size, layout, plan):
    assert layout_for(size, layout) == plan
    g, d = Generator(8, 4, 1, size, layout), Discriminator(4, 1, size, layout=layout)
    assert g.net[0].kernel_size == (plan.first, plan.first)
    images = g(torch.randn(3, 8))
    assert images.shape == (3, 1, size, size)
    assert d(images).shape == (3,)
    widths = [m.out_channels for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert widths == [4 * 2 ** (plan.blocks - 1 - i) for i in range(plan.blocks)] + [1]


@pytest.mark.parametrize("size", [8, 18, 36, 100])
def test_sizes_without_a_4_to_7_start_are_usage_errors(size):
    with pytest.raises(UsageError, match="such as 28, 32 or 64"):
        layout_for(size)


def test_unknown_layout_is_a_usage_error():
    with pytest.raises(UsageError, match="bad layout 'wide': choose from fit, odd, pad"):
        layout_for(28, "wide")
