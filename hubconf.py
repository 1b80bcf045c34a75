"""torch.hub entry points: one per catalogue model, returning its pretrained network.

    model = torch.hub.load("path/to/zoo", "dcgan_mnist", source="local")   # a clone
    images = model(torch.randn(16, 100))                                    # [-1, 1]

Each entry returns the model's first inference graph in eval mode (a GAN's generator, a VAE's
decoder, CycleGAN's A->B generator); ``graph="..."`` picks another (``"encoder"``,
``"b2a"``, ...), and ``graph="all"`` returns the whole `zoo.contract.model.GenerativeModel`. The
weights are zoo's shipped, sha256-verified files (zoo-gen must be installed: `pip install -e .`).
"""

from __future__ import annotations

from typing import Any

dependencies = ["torch", "safetensors", "pluggy", "click"]


def _entry(name: str, summary: str) -> Any:
    def load(graph: str | None = None, device: str = "cpu") -> Any:
        import zoo.api

        model = zoo.api.load(name, device).model
        if graph == "all":
            return model
        graphs = model.graphs()
        if graph is None:  # what a user samples from: G, the VAE's decoder, CycleGAN's A->B
            graph = next((g for g in ("generator", "decoder", "a2b") if g in graphs), None)
            graph = graph or next(iter(graphs))
        if graph not in graphs:
            raise ValueError(f"{name} has graphs {', '.join(graphs)}, not {graph!r}")
        return graphs[graph].module

    load.__name__ = load.__qualname__ = name.replace("-", "_")
    load.__doc__ = f"{name}: {summary} (pretrained)."
    return load


def _register() -> None:
    from zoo.registry.catalogue import builtin_catalogue

    for entry in builtin_catalogue():
        if entry.weights is not None:
            globals()[entry.name.replace("-", "_")] = _entry(entry.name, entry.summary)


_register()
