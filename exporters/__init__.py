"""Built-in exporters, registered through the ``zoo`` entry-point group like any plugin.

These objects are deliberately light: the exporter code is imported only when it runs.
"""

from zoo import ExporterSpec, plugin

safetensors = plugin(
    ExporterSpec(
        "safetensors",
        "inference weights + metadata to rebuild the model (no pickle)",
        ".safetensors",
        "zoo.exporters.safetensors_exporter:export",
    )
)
onnx = plugin(
    ExporterSpec(
        "onnx",
        "one self-contained ONNX file per network, validated in onnxruntime",
        ".onnx",
        "zoo.exporters.onnx_exporter:export",
    )
)
onnx_fp16 = plugin(
    ExporterSpec(
        "onnx-fp16",
        "ONNX in float16 (float32 inputs and outputs), for GPUs; `zoo export --fp16`",
        ".onnx",
        "zoo.exporters.onnx_exporter:export_fp16",
    )
)
onnx_int8 = plugin(
    ExporterSpec(
        "onnx-int8",
        "ONNX with the sampling graph quantised to int8 (QDQ), for CPUs; `zoo export --int8`",
        ".onnx",
        "zoo.exporters.onnx_exporter:export_int8",
    )
)
triton = plugin(
    ExporterSpec(
        "triton",
        "a Triton / KServe model repository: NAME[-GRAPH]/config.pbtxt and 1/model.onnx",
        "",
        "zoo.exporters.triton_exporter:export",
    )
)
