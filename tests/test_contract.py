"""Every built-in family, and the example plugin's, passes the contract of zoo.testing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from zoo.plugins.diffusion import DiffusionModel
from zoo.plugins.gan import GAN
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


class TestWGANClipping(FamilyContract):
    family = "wgan"
    config = {**CONV, "penalty": "clip", "n_critic": 2}


class TestVAE(FamilyContract):
    family = "vae"
    config = {"nz": 4, "nf": 4, "hidden": 16}


class TestVAEMixturePrior(FamilyContract):
    family = "vae"
    config = {**TestVAE.config, "prior": "mog", "prior_components": 3}


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


# -- the rest of what the example plugin adds through the documented API ----------------------


def _npz_bomb(path):
    """A few KB that declare a 5 GiB array."""
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    shape = (5 * 2**30 // 256, 1, 16, 16)
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", header.getvalue() + bytes(1 << 20))
    return path


def test_example_data_source_and_logger(tmp_path, capfd):
    import numpy as np
    import pytest

    from zoo import api
    from zoo.data.sources import load_dataset
    from zoo.errors import UsageError
    from zoo.testing import plugin_registry

    images = np.random.default_rng(0).integers(0, 256, (40, 1, 16, 16), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(40) % 4)
    np.savez(tmp_path / "float.npz", images=images.astype(np.float32))
    with plugin_registry(zoo_lsgan.plugin, "lsgan"):
        ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
        assert (len(ds.train), len(ds.test), ds.classes) == (32, 8, ["0", "1", "2", "3"])
        with pytest.raises(UsageError, match="must be uint8"):
            load_dataset(f"npz:{tmp_path / 'float.npz'}")
        with pytest.raises(UsageError, match=r"images\.npy holds 5\.0 GiB of data, over zoo.s"):
            load_dataset(f"npz:{_npz_bomb(tmp_path / 'bomb.npz')}")
        api.train("lsgan", data=f"npz:{tmp_path / 'd.npz'}", out=tmp_path / "run", steps=2,
                  batch_size=4, overrides={**CONV, "image_size": 16, "log_every": 1},
                  progress=False, log=["stdout"])  # fmt: skip
    out = capfd.readouterr().out
    assert f"training lsgan in {tmp_path / 'run'} from step 0" in out
    assert "step 1 seconds=" in out and " d_loss=" in out and "step 2 samples: " in out


# the kit itself, on families broken on purpose


class Leaky(GAN):
    """A GAN that perturbs its inputs with torch's global generator, not batch.noise."""

    def train_step(self, batch, step):
        batch.images = batch.images + 0.1 * torch.randn_like(batch.images)
        return super().train_step(batch, step)


def test_the_kit_catches_draws_from_the_global_generator(tmp_path, monkeypatch):
    from zoo import FamilySpec, hookimpl
    from zoo.plugins import GANConfig
    from zoo.testing import plugin_registry

    class Plugin:
        @hookimpl
        def register_families(self, register):
            register(FamilySpec("leaky", "a broken GAN", f"{__name__}:Leaky", GANConfig))

    class Check(FamilyContract):
        family = "leaky"
        config = TestGAN.config

    with plugin_registry(Plugin(), "leaky"):
        Check().test_resume_is_bit_identical(tmp_path / "resume")  # this alone cannot tell
        with pytest.raises(AssertionError, match="depends on torch's global generator"):
            Check().test_training_draws_only_the_batchs_noise(tmp_path / "kit", monkeypatch)


class Misdescribed(DiffusionModel):
    """Samples in torch with DDIM's eta 0.5 but exports a description that says eta 0."""

    def sample(self, request, run):
        request.options.setdefault("eta", 0.5)
        return super().sample(request, run)


def test_the_kit_catches_an_export_that_describes_another_sampler(tmp_path):
    from zoo import FamilySpec, hookimpl
    from zoo.plugins import DiffusionConfig
    from zoo.testing import plugin_registry

    class Plugin:
        @hookimpl
        def register_families(self, register):
            register(FamilySpec("misdescribed", "a broken diffusion", f"{__name__}:Misdescribed",
                                DiffusionConfig, multistep="denoiser"))  # fmt: skip

    class Check(FamilyContract):
        family = "misdescribed"
        config = {"width": 8, "mults": [1, 2], "timesteps": 100}

    with plugin_registry(Plugin(), "misdescribed"):
        Check().test_onnx_export_samples_like_torch(tmp_path / "onnx")  # this alone cannot tell
        with pytest.raises(AssertionError, match="Tensor-likes are not close"):
            Check().test_multistep_description_samples_like_torch(tmp_path / "kit")
