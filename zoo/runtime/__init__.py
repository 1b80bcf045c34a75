"""Running models: torch devices and runners, onnxruntime sessions, a file to a model, exports,
and a latent prior's tools, with and without torch.

Owns: `devices` (picking a device, onnxruntime sessions with the right provider, torch's
draws), `loading` (a source's weights into its family's model), `exporting` (exporter
plugins, and the ONNX graphs cached per weights file), `latents` (draws, truncation,
interpolation, walks and latents files, in NumPy), `inversion` (the latents of given images,
by gradient descent through the prior graph) and `onnx_sampling` (the torch-free sampler).
`latents`, `onnx_sampling` and this ``__init__`` never import torch.

May import: `zoo.errors`, `zoo.base`, `zoo.contract`, `zoo.registry`, `zoo.store`,
`zoo.data`.
"""

from typing import Any

from zoo._moved import moved_warning


def __getattr__(name: str) -> Any:
    # zoo.runtime was one module until the role layout; its plugin-facing name moved
    if name == "onnx_session":
        moved_warning("zoo.runtime.onnx_session", "zoo.runtime.devices.onnx_session")
        from zoo.runtime.devices import onnx_session

        return onnx_session
    raise AttributeError(f"module 'zoo.runtime' has no attribute {name!r}")
