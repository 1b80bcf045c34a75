"""Plugin discovery and the catalogue: what is installed, and what each model name means.

Owns: loading plugins from entry points and checking what they register (`discovery`),
the catalogue of named models (`catalogue`, reading registry.toml and plugins' entries) and
a named model's recipe (`recipes`). Never imports torch, so that `zoo list` starts fast.

May import: `zoo.errors`, `zoo.base`, `zoo.contract`.
"""
