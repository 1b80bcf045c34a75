"""Built-in model families, registered through the ``zoo`` entry-point group like any plugin.

Each object below only names its family's class; the family module (networks, losses, train
step) is imported when the family is first used, so listing models never imports torch.
The objects carry a ``_plugin`` suffix: a bare ``gan`` would be replaced by the submodule
``zoo.plugins.gan`` as soon as that is imported.
"""

from zoo import FamilySpec, plugin

gan_plugin = plugin(
    FamilySpec(
        "gan",
        "MLP GAN with the non-saturating loss (Goodfellow et al. 2014)",
        "zoo.plugins.gan:GAN",
    )
)
dcgan_plugin = plugin(
    FamilySpec("dcgan", "deep convolutional GAN (Radford et al. 2015)", "zoo.plugins.dcgan:DCGAN")
)
cgan_plugin = plugin(
    FamilySpec("cgan", "class-conditional GAN (Mirza & Osindero 2014)", "zoo.plugins.cgan:CGAN")
)
wgan_plugin = plugin(
    FamilySpec(
        "wgan", "Wasserstein GAN: weight clipping or gradient penalty", "zoo.plugins.wgan:WGAN"
    )
)
vae_plugin = plugin(
    FamilySpec(
        "vae",
        "convolutional variational autoencoder (Kingma & Welling 2014)",
        "zoo.plugins.vae:VAE",
    )
)
pggan_plugin = plugin(
    FamilySpec("pggan", "progressive growing GAN (Karras et al. 2018)", "zoo.plugins.pggan:PGGAN")
)
cyclegan_plugin = plugin(
    FamilySpec(
        "cyclegan", "unpaired image translation (Zhu et al. 2017)", "zoo.plugins.cyclegan:CycleGAN"
    )
)
