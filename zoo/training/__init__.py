"""Training: the loop, runs over several processes, loggers, and the plain reference loop.

Owns: `trainer` (run folders, the loop, checkpoints, previews and metrics), `distributed`
(ranks, the local launcher, averaging), `loggers` (the logger plugins, contained) and
`plain_dcgan` (the tutorials' loop that `zoo bench --reference` measures zoo against).

May import: every package below it: `zoo.errors`, `zoo.base`, `zoo.contract`,
`zoo.registry`, `zoo.store`, `zoo.data`, `zoo.runtime`.
"""
