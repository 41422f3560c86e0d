"""The `pixel` command: one entry point for the demo, evaluations, benchmarks and verification.

Each concern registers its own subcommands from its module in this package (`register(commands,
bench)`); modules import heavy libraries inside their handlers so `pixel --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pixel_assets.cli._common import DEBUG_ENV, command_name, debug_enabled, describe

# Modules that contribute subcommands, in help order.
COMMAND_MODULES = ("demo", "pii", "dedup", "compile", "verify", "contract", "training", "training_bench",
                   "training_distributed")

EPILOG = f"""\
exit status: 0 success; 1 a check failed (verify: a gate; manifest: invalid or missing);
2 bad arguments or input, or an error, reported as one line on stderr:
  pixel COMMAND: error: REASON
The line never quotes input data. For the Python traceback instead, set {DEBUG_ENV}=1 or pass
--debug before the command (pixel --debug COMMAND ...).
"""


class CommandModuleMissing(ImportError):
    """A module of COMMAND_MODULES is not there (`pixel` refuses to start without it)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixel", description=__doc__.splitlines()[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help=f"on an error, show the Python traceback (same as {DEBUG_ENV}=1)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench_parser = commands.add_parser("bench", help="benchmarks against a baseline in the same run")
    bench = bench_parser.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pixel_assets.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pixel_assets.cli.{name}":
                raise
            # Listed but not installed: a broken install or a bad merge, never a command to skip.
            raise CommandModuleMissing(f"pixel: command module pixel_assets.cli.{name} is listed in "
                                       "COMMAND_MODULES but cannot be found; reinstall the package") from exc
        module.register(commands, bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
    except KeyboardInterrupt:
        print(f"pixel {command_name(args)}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        if args.debug or debug_enabled():
            raise
        print(f"pixel {command_name(args)}: error: {describe(exc)}", file=sys.stderr, flush=True)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
