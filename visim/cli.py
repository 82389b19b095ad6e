"""The ``visim`` command. The only place that parses argv.

Sub-commands live in ``visim/commands/<name>.py``; each defines ``add_parser(subparsers)``
which registers its arguments and ``handler``. Command modules import nothing heavy at import
time, so ``visim --help`` and ``visim plugins`` start without torch.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import pkgutil
import sys

from visim import __version__, commands
from visim.engine.interrupt import stop_signals_raise
from visim.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, VisimError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="visim",
        description="Train and evaluate visual-similarity (re-identification) embedding models.",
    )
    parser.add_argument("--version", action="version", version=f"visim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # helpers shared by commands, e.g. _table
            continue
        importlib.import_module(f"visim.commands.{info.name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with stop_signals_raise():  # SIGTERM / SIGUSR1 end a command as Ctrl+C does
            return int(args.handler(args) or 0)
    except VisimError as exc:  # every error a command reports: one place, its own exit code
        print(exc.report(getattr(args, "config", None) or "config"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # TrainingInterrupted says where the state was saved
        print(f"visim: {exc}" if str(exc) else "visim: interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_INTERRUPTED)  # 128 + the signal: 130, 143, 138
    except BrokenPipeError:  # `visim components | head`
        # Python flushes stdout again at exit and would complain about the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def entry() -> None:
    """The ``visim`` executable (console script and ``python -m visim``): :func:`main`, then exit.

    Frozen first: the cyclic collection at interpreter exit would walk every object torch and
    torchvision created (about 0.6 s); exit handlers still run (logs and files are flushed).
    """
    code = main()
    gc.freeze()
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
