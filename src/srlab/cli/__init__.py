"""The ``srlab`` command line: thin wiring from arguments to library calls.

Each sub-command lives in its own module in this package and defines ``register(subparsers)`` and
``run(args) -> int``. Modules import only argparse at import time (heavy imports go inside ``run``) so
``srlab --help`` is instant. User errors (:class:`srlab.errors.SrlabError`) are printed as one line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from srlab import __version__
from srlab.errors import SrlabError


def _command_modules():
    import srlab.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"srlab.cli.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srlab", description="Train, evaluate, compare and run single-image super-resolution models."
    )
    parser.add_argument("--version", action="version", version=f"srlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SrlabError as exc:
        print(f"srlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `srlab ... | head`
        return 0
    except KeyboardInterrupt:
        print(f"srlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
