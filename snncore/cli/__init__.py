"""Command line: python -m snncore train | runs | inspect | bench | sweep | sweeps  (add --json for machine-readable output).

Bad input exits with status 2 and one line naming the field and what is allowed.

Layout: common.py holds what every subcommand shares (the one-line-error Parser, fail, print_json,
the run config and rule hyperparameter flags); each subcommand is one module (or any object) with
    NAME                        the word after `python -m snncore`
    add_parser(subparsers, argv)  adds its parser (argv: the whole command line, for flags that
                                depend on it, e.g. an import-path rule's hyperparameters)
and one of
    run(args) -> int            parsed by the top-level parser, then called with its Namespace
    main(argv) -> int           parses its own arguments (argv after NAME); its add_parser only
                                lists it in the top-level --help (add_help=False)
To add a subcommand: write that module and add it to COMMANDS below (the order of --help).

The thread budget (snncore.threads.set_env) is set by snncore/__main__.py on import, before torch or
Numba load; import that module (as the console script does), not this one, to start a process.
"""
from __future__ import annotations

import argparse
import sys

from . import bench, inspect, runs, train
from .common import Parser
from .sweep import SWEEP, SWEEPS

COMMANDS = [train, runs, inspect, bench, SWEEP, SWEEPS]


def build_parser(argv=None) -> argparse.ArgumentParser:
    p = Parser(prog="python -m snncore", description="Plasticity Lab engine")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    for cmd in COMMANDS:
        cmd.add_parser(sub, argv)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own = {c.NAME: c for c in COMMANDS if hasattr(c, "main")}
    if argv and argv[0] in own:
        return own[argv[0]].main(argv[1:])
    args = build_parser(argv).parse_args(argv)
    for cmd in COMMANDS:
        if cmd.NAME == args.cmd:
            return cmd.run(args)
    return 2
