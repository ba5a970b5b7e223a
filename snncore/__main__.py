"""python -m snncore (and the `snncore` console script): set the thread budget, then run snncore.cli.

The budget goes into the environment here, on import, before torch and Numba load (they read it
once, when they load: snncore/threads.py); snncore.cli imports them only inside its subcommands.
"""
from __future__ import annotations

import sys

from .threads import ThreadsError, set_env

try:                       # the run's thread budget, before torch and Numba load (snncore/threads.py)
    set_env()
except ThreadsError as _e:
    print(f"error: {_e}", file=sys.stderr)
    raise SystemExit(2)

from .cli import build_parser, main  # noqa: E402 -- after the budget; main is the console script's entry

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
