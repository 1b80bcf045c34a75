"""Inference weights as safetensors: enough to rebuild and sample without the training run."""

from __future__ import annotations

from pathlib import Path

from zoo.contract.metadata import GRAPHS_KEY, graph_layout
from zoo.contract.model import GenerativeModel, ModelInfo
from zoo.store.checkpoint import save_weights


def export(model: GenerativeModel, out: Path, info: ModelInfo) -> list[Path]:
    graphs = graph_layout(model.graphs())
    save_weights(out, model.inference_state(), info, "export", {GRAPHS_KEY: graphs})
    return [out]
