"""The `pixel` command: one entry point for the demo, evaluations, benchmarks and verification.

Each concern registers its own subcommands from its module in this package (`register(commands,
bench)`); modules import heavy libraries inside their handlers so `pixel --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands, in help order.
COMMAND_MODULES = ("demo", "pii", "dedup", "compile", "verify", "contract")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixel", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench_parser = commands.add_parser("bench", help="benchmarks against a baseline in the same run")
    bench = bench_parser.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pixel_assets.cli.{name}")
        except ModuleNotFoundError as exc:  # a concern not built yet
            if exc.name != f"pixel_assets.cli.{name}":
                raise
            continue
        module.register(commands, bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.handler(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
