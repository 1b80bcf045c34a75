"""Every built-in family, and the example plugin's, passes the contract of zoo.testing."""

from __future__ import annotations

import sys
from pathlib import Path

from zoo.testing import FamilyContract

sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "zoo-lsgan"))
import zoo_lsgan.plugin

CONV = {"nz": 8, "ngf": 4, "ndf": 4}


class TestGAN(FamilyContract):
    family = "gan"
    config = {"nz": 8, "g_hidden": [16], "d_hidden": [16], "ema_decay": 0.9}


class TestDCGAN(FamilyContract):
    family = "dcgan"
    config = {**CONV, "layout": "pad"}
    image_size = 28


class TestCGAN(FamilyContract):
    family = "cgan"
    config = {**CONV, "embed_dim": 4}


class TestWGAN(FamilyContract):
    family = "wgan"
    config = {**CONV, "penalty": "gp", "n_critic": 2}


class TestVAE(FamilyContract):
    family = "vae"
    config = {"nz": 4, "nf": 4, "hidden": 16}


class TestPGGAN(FamilyContract):
    family = "pggan"
    config = {"nz": 8, "fmap_base": 64, "fmap_max": 8, "fade_steps": 1, "stable_steps": 1}


class TestCycleGAN(FamilyContract):
    family = "cyclegan"
    data = "unpaired:digits,digits"
    config = {"ngf": 4, "ndf": 4, "blocks": 1}
    takes_images = True
    sample_options = [{"direction": "b2a"}]


class TestLSGAN(FamilyContract):
    family = "lsgan"
    config = CONV
    plugin = zoo_lsgan.plugin
