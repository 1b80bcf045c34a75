"""`zoo serve`: models' ONNX exports behind an HTTP server (uvicorn and starlette).

What it owns: the KServe / Triton open inference protocol, version 2 (REST, JSON and binary
tensors), a sampling endpoint for people and scripts, dynamic batching, limits and
backpressure, Prometheus metrics, and the web page in ``static/``.

What it may import: the torch-free layers below it (`zoo.base`, `zoo.registry`, `zoo.store`
but its checkpoint module, `zoo.runtime.onnx_sampling`) and its own modules; never torch, so
a serving process stays small. Nothing else in zoo imports it but the CLI command.

  repository.py  which models and graphs are served, their sessions, names and shapes
  protocol.py    version 2 requests and responses: datatypes, JSON and binary tensors
  batching.py    one queue per graph, merged into onnxruntime calls
  app.py         the starlette application: routes, auth, limits, metrics
"""
