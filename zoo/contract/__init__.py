"""The plugin contract: what families, exporters and data sources build on.

Owns: the specs plugins register (`specs`) and the hooks that register them (`hookspecs`);
the `GenerativeModel` base class, `Graph`, `Batch` and its `Noise` (`model`); the latent-prior
base class (`latent`); shared losses, layers and the adversarial step (`blocks`); the
multi-step samplers of diffusion and flow families, as data run in NumPy (`diffusion`);
augmentation (`augment`); what a data source returns (`imagesets`); and the metadata written
into every exported file (`metadata`). docs/plugins.md lists the public names.

May import: `zoo.errors` and `zoo.base`. This package's ``__init__`` stays empty so that
`zoo --help` can read the specs without importing torch.
"""
