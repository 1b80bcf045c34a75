"""Inference weights as safetensors: enough to rebuild and sample without the training run."""

from __future__ import annotations

from pathlib import Path

from zoo.checkpoint import save_weights
from zoo.metadata import GRAPHS_KEY, graph_layout
from zoo.model import GenerativeModel, ModelInfo


def export(model: GenerativeModel, out: Path, info: ModelInfo) -> list[Path]:
    graphs = graph_layout(model.graphs())
    save_weights(out, model.inference_state(), info, "export", {GRAPHS_KEY: graphs})
    return [out]
