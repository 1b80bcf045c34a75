"""`python -m zoo`: the CLI, as launchers such as `torchrun -m zoo train NAME` need it."""

from zoo.cli.main import main

main()
