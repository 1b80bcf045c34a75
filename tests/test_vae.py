"""VAE: the KL term, the ELBO, sampling modes and ONNX parity of both graphs."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    Normal,
    kl_divergence,
)

import zoo.api as z
from zoo.contract.metadata import ImageSpec
from zoo.contract.model import Batch, SampleRequest
from zoo.data.sources import load_dataset
from zoo.plugins import VAEConfig, vae
from zoo.plugins.vae import MixturePrior
from zoo.runtime.devices import TorchRunner

TINY = {**VAEConfig.defaults(), "nz": 4, "nf": 8, "hidden": 32, "lr": 2e-3}


def _images(result):
    return getattr(result, "images", result)


def _model(size: int = 8) -> vae.VAE:
    torch.manual_seed(0)
    return vae.VAE(dict(TINY), ImageSpec(channels=1, size=size))


def test_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 7, generator=gen), torch.randn(5, 7, generator=gen)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(vae.kl_divergence(mu, logvar), expected)
    assert vae.kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


def test_mixture_prior_density_and_sampler_match_torch_distributions():
    torch.manual_seed(0)
    prior = vae.MixturePrior(3, 2)
    with torch.no_grad():
        prior.logvar.normal_()
    scale = (0.5 * prior.logvar).exp()
    mixture = MixtureSameFamily(Categorical(torch.ones(3)), Independent(Normal(prior.mu, scale), 1))
    z = torch.randn(6, 2)
    torch.testing.assert_close(prior.log_density(z), mixture.log_prob(z))
    # the last noise coordinate picks a component by its normal CDF, in 3 equal slices
    eps = torch.randn(3, 2)
    pick = Normal(0.0, 1.0).icdf(torch.tensor([0.1, 0.5, 0.9]))
    with torch.no_grad():
        out = prior(torch.cat([eps, pick[:, None]], 1))
    torch.testing.assert_close(out, prior.mu + eps * scale)
    with torch.no_grad():
        draws = prior(torch.randn(30000, 3))
    # components weigh the same: the draws' mean is the components' mean
    torch.testing.assert_close(draws.mean(0), prior.mu.mean(0), atol=0.03, rtol=0)


def test_a_mixture_prior_vae_reconstructs_through_the_latent_decoder():
    torch.manual_seed(0)
    model = vae.VAE({**TINY, "prior": "mog", "prior_components": 5}, ImageSpec(1, 8))
    graphs = model.graphs()
    assert graphs["decoder"].example["z"].shape[1] == TINY["nz"] + 1  # noise for the mixture
    run = TorchRunner(graphs, torch.device("cpu"))
    inputs = torch.rand(4, 1, 8, 8) * 2 - 1
    recon = model.sample(SampleRequest(4, torch.Generator(), inputs=inputs), run)
    with torch.no_grad():
        torch.testing.assert_close(recon, model.decoder(model.encoder(inputs)[0]))
    recon_nll, kl, _ = model.losses(inputs, torch.randn(4, TINY["nz"]))
    assert recon_nll.shape == kl.shape == (4,) and torch.isfinite(kl).all()


def test_reconstruction_nll_is_summed_bernoulli():
    logits = torch.tensor([[[[0.0, 2.0]]]])
    images = torch.tensor([[[[1.0, -1.0]]]])  # targets 1 and 0
    expected = -math.log(0.5) - math.log(1 - 1 / (1 + math.exp(-2.0)))
    assert vae.reconstruction_nll(logits, images).item() == pytest.approx(expected, rel=1e-6)


def test_held_out_elbo_is_finite_and_improves():
    data = load_dataset("digits")
    model = _model()
    model.optimizers = model.configure_optimizers()
    before = model.validate(data.test)
    assert all(math.isfinite(v) for v in before.values())
    assert before["elbo"] == pytest.approx(-(before["recon_nll"] + before["kl"]))
    torch.manual_seed(1)
    images = (data.train.images.float() / 127.5 - 1)[:256]
    for step in range(60):
        model.train_step(Batch(images[torch.randint(len(images), (64,))]), step)
    after = model.validate(data.test)
    assert model.validate(data.test) == after  # fixed validation noise
    assert after["elbo"] > before["elbo"] + 5  # nats per image (64 pixels)


def test_sample_modes_shapes():
    model = _model(12)
    run = TorchRunner(model.graphs(), torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    assert model.sample(SampleRequest(3, gen), run).shape == (3, 1, 12, 12)
    inputs = torch.rand(5, 1, 12, 12) * 2 - 1
    recon = model.sample(SampleRequest(5, gen, inputs=inputs), run)
    assert recon.shape == (5, 1, 12, 12) and recon.min() >= -1 and recon.max() <= 1


def test_the_mixture_priors_inverse_maps_back_to_the_same_latent():
    """`encode_prior` hands inversion the noise the "decoder" graph turns into the encoder's
    latent: through the mixture, that noise gives the latent back."""
    torch.manual_seed(0)
    prior = MixturePrior(7, 5)
    with torch.no_grad():
        prior.logvar.normal_(0, 0.3)
        z = prior(torch.randn(40, 6))
        noise = prior.noise_of(z)
        torch.testing.assert_close(prior(noise), z, atol=1e-5, rtol=1e-5)


def test_train_sample_export_end_to_end(tmp_path):
    run = tmp_path / "run"
    z.train(
        "vae",
        data="digits",
        out=run,
        steps=4,
        batch_size=32,
        overrides={**TINY, "log_every": 2, "sample_every": 4, "checkpoint_every": 4},
        progress=False,
    )
    assert (run / "samples" / "step-00000004.png").exists()
    assert any("val_elbo" in line for line in (run / "metrics.jsonl").read_text().splitlines())
    files = z.export(run, "onnx", tmp_path / "vae.onnx")
    assert sorted(p.name for p in files) == ["vae.decoder.onnx", "vae.encoder.onnx"]
    z.export(run, "safetensors", tmp_path / "vae.safetensors")
    inputs = torch.rand(4, 1, 8, 8) * 2 - 1
    for kwargs in ({}, {"inputs": inputs}):
        by_torch = _images(z.sample(tmp_path / "vae.safetensors", n=6, seed=3, **kwargs))
        by_onnx = _images(z.sample(files[0], n=6, seed=3, runtime="onnx", **kwargs))
        torch.testing.assert_close(by_onnx, by_torch, atol=1e-4, rtol=0)


def test_shift_moves_training_images_only():
    """``shift`` augments what the VAE trains on; validation sees the held-out images as
    they are, so the ELBO stays comparable across recipes."""
    images = load_dataset("digits", image_size=8).train.images[:16]
    batch = Batch(images.float() / 127.5 - 1, None)
    plain, shifted = _model(), _model()
    shifted.config["shift"] = 0.25
    for m in (plain, shifted):
        m.optimizers = m.configure_optimizers()
    torch.manual_seed(1)
    loss_plain = plain.train_step(batch, 0)["loss"]
    torch.manual_seed(1)
    loss_shifted = shifted.train_step(batch, 0)["loss"]
    assert loss_plain != loss_shifted
    held_out = load_dataset("digits", image_size=8).test
    fresh, fresh_shifted = _model(), _model()
    fresh_shifted.config["shift"] = 0.25
    assert fresh.validate(held_out) == fresh_shifted.validate(held_out)
