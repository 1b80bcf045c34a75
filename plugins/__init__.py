"""Built-in model families, registered through the ``zoo`` entry-point group like any plugin.

Each object below only names its family's class; the family module (networks, losses, train
step) is imported when the family is first used, so listing models never imports torch.
"""

from types import SimpleNamespace

from zoo import FamilySpec, hookimpl


def _plugin(spec: FamilySpec) -> SimpleNamespace:
    @hookimpl
    def register_families(register):
        register(spec)

    return SimpleNamespace(register_families=register_families)


gan = _plugin(
    FamilySpec(
        "gan",
        "MLP GAN with the non-saturating loss (Goodfellow et al. 2014)",
        "zoo.plugins.gan:GAN",
    )
)
dcgan = _plugin(
    FamilySpec("dcgan", "deep convolutional GAN (Radford et al. 2015)", "zoo.plugins.dcgan:DCGAN")
)
cgan = _plugin(
    FamilySpec("cgan", "class-conditional GAN (Mirza & Osindero 2014)", "zoo.plugins.cgan:CGAN")
)
wgan = _plugin(
    FamilySpec(
        "wgan", "Wasserstein GAN: weight clipping or gradient penalty", "zoo.plugins.wgan:WGAN"
    )
)
vae = _plugin(
    FamilySpec(
        "vae",
        "convolutional variational autoencoder (Kingma & Welling 2014)",
        "zoo.plugins.vae:VAE",
    )
)
pggan = _plugin(
    FamilySpec("pggan", "progressive growing GAN (Karras et al. 2018)", "zoo.plugins.pggan:PGGAN")
)
cyclegan = _plugin(
    FamilySpec(
        "cyclegan", "unpaired image translation (Zhu et al. 2017)", "zoo.plugins.cyclegan:CycleGAN"
    )
)
