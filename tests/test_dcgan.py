from __future__ import annotations

import pytest
import torch

from zoo.errors import UsageError
from zoo.plugins.dcgan import Discriminator, Generator, upsampling_blocks


@pytest.mark.parametrize(
    ("size", "start", "layout"),
    [
        (16, 0, (4, 2, False)),
        (28, 0, (7, 2, False)),
        (32, 0, (4, 3, False)),
        (48, 0, (6, 3, False)),
        (64, 0, (4, 4, False)),
        (28, 4, (4, 3, True)),  # 4 -> 7 -> 14 -> 28: as deep and wide as 32
        (32, 4, (4, 3, False)),
        (56, 4, (4, 4, True)),
    ],
)
def test_networks_reach_the_image_size_from_their_start(size, start, layout):
    assert upsampling_blocks(size, start) == layout
    g, d = Generator(8, 4, 1, size, start), Discriminator(4, 1, size, start=start)
    assert g.net[0].kernel_size == (layout[0], layout[0])
    images = g(torch.randn(3, 8))
    assert images.shape == (3, 1, size, size)
    assert d(images).shape == (3,)
    widths = [m.out_channels for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert widths == [4 * 2 ** (layout[1] - 1 - i) for i in range(layout[1])] + [1]


@pytest.mark.parametrize("size", [8, 18, 36, 100])
def test_sizes_without_a_4_to_7_start_are_usage_errors(size):
    with pytest.raises(UsageError, match="such as 28, 32 or 64"):
        upsampling_blocks(size)


def test_a_4x4_start_needs_4_or_7_times_a_power_of_two():
    with pytest.raises(UsageError, match="start = 4 needs an image size of 4 or 7 times"):
        upsampling_blocks(48, 4)
