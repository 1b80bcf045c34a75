from __future__ import annotations

import pytest
import torch

from zoo.errors import UsageError
from zoo.plugins.dcgan import Discriminator, Generator, upsampling_blocks


@pytest.mark.parametrize(
    ("size", "start", "blocks"), [(16, 4, 2), (28, 7, 2), (32, 4, 3), (48, 6, 3), (64, 4, 4)]
)
def test_networks_start_at_the_size_halved_down_to_4_to_7(size, start, blocks):
    assert upsampling_blocks(size) == (start, blocks)
    g, d = Generator(8, 4, 1, size), Discriminator(4, 1, size)
    assert g.net[0].kernel_size == (start, start)
    images = g(torch.randn(3, 8))
    assert images.shape == (3, 1, size, size)
    assert d(images).shape == (3,)


@pytest.mark.parametrize("size", [8, 18, 36, 100])
def test_sizes_without_a_4_to_7_start_are_usage_errors(size):
    with pytest.raises(UsageError, match="such as 28, 32 or 64"):
        upsampling_blocks(size)
