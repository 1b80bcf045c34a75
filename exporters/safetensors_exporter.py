"""Inference weights as safetensors: enough to rebuild and sample without the training run."""

from __future__ import annotations

import json
from pathlib import Path

from zoo.checkpoint import save_weights
from zoo.model import GenerativeModel, ModelInfo


def export(model: GenerativeModel, out: Path, info: ModelInfo) -> list[Path]:
    io = {
        name: {"inputs": {k: list(v.shape[1:]) for k, v in g.example.items()}, "outputs": g.outputs}
        for name, g in model.graphs().items()
    }
    save_weights(out, model.inference_state(), info, "export", {"zoo.graphs": json.dumps(io)})
    return [out]
