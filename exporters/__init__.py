"""Built-in exporters, registered through the ``zoo`` entry-point group like any plugin.

These objects are deliberately light: the exporter code is imported only when it runs.
"""

from types import SimpleNamespace

from zoo import ExporterSpec, hookimpl


def _plugin(spec: ExporterSpec) -> SimpleNamespace:
    @hookimpl
    def register_exporters(register):
        register(spec)

    return SimpleNamespace(register_exporters=register_exporters)


safetensors = _plugin(
    ExporterSpec(
        "safetensors",
        "inference weights + metadata to rebuild the model (no pickle)",
        ".safetensors",
        "zoo.exporters.safetensors_exporter:export",
    )
)
onnx = _plugin(
    ExporterSpec(
        "onnx",
        "one self-contained ONNX file per network, validated in onnxruntime",
        ".onnx",
        "zoo.exporters.onnx_exporter:export",
    )
)
