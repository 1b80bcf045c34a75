"""The `zoo` command: `main` and one module per command, each imported only when it runs,
so that `zoo --help`, `zoo list` and `zoo info` never import torch.

May import: anything in zoo; nothing imports it but ``python -m zoo``.
"""
