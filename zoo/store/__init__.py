"""Where weights come from and where they are kept: the one way from a source to a file.

Owns: downloads into the cache (`download`), resolving a catalogue name, run folder, file or
URL to a verified local file (`sources`), weight and checkpoint files (`checkpoint`), and
checking and caching ONNX exports (`exports`). Everything but `checkpoint` runs without
torch: the torch-free sampling path and the server come through here.

May import: `zoo.errors`, `zoo.base`, `zoo.contract`, `zoo.registry`.
"""
