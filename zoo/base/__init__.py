"""Foundations that know nothing of models, and never import torch.

Owns: atomic writes, locks and hashing (`files`), typed settings (`settings`), run folders
(`runs`), PNG and array files (`grids`), the ONNX wire reader (`onnx_wire`) and torch's
random numbers in NumPy (`torch_random`).

May import: `zoo.errors` only. Everything else in zoo may import from here.
"""
