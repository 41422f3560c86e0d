"""Shared CLI pieces: argparse value types, `CliError`, and the one-line description of a failure.

`describe()` never repeats input data: messages of exceptions raised by the standard library or
third-party parsers (which can quote file contents, e.g. a JSON/YAML snippet or an `int()` literal)
are reduced to the exception type and a position; only messages written by this project (a
`raise` in pixel_assets, whose messages name keys, indices and arguments, not values) and by
botocore (fixed templates) are shown as they are.
"""

from __future__ import annotations

import argparse
import json
import linecache
import os
import re
import sys
from pathlib import Path

DEBUG_ENV = "PIXEL_DEBUG"
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
_SAFE_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class CliError(Exception):
    """Bad input found by a command; the message is printed as `pixel CMD: error: MESSAGE`."""


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


# --- argparse value types (argparse reports a rejected value as a usage error, exit status 2) ----

def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def open_unit_float(text: str) -> float:
    """A threshold strictly between 0 and 1 (a Jaccard similarity)."""
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return value


# --- checks shared by commands ------------------------------------------------------------------

def check_family(family: str | None) -> None:
    """Reject a family the registry does not know (a typo would silently apply no allow-list)."""
    if family is None:
        return
    from pixel_assets.lib.registry import load_registry

    names = load_registry().names
    if family not in names:
        raise CliError(f"unknown family {family!r} for --family; valid: {', '.join(names)}")


# --- one-line description of a failure ----------------------------------------------------------

def command_name(args: argparse.Namespace) -> str:
    """'verify', 'bench validate', 'dedup banding', ..."""
    parts = [str(args.command)] + [str(v) for k, v in vars(args).items() if k.endswith("_command") and v]
    return " ".join(parts)


def _raised_by_project(exc: BaseException) -> bool:
    """True when a `raise` statement in pixel_assets created this exception (its message is ours)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    if not os.path.realpath(filename).startswith(_PACKAGE_DIR):
        return False
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise")


def _position_only(exc: BaseException) -> str | None:
    """Parse errors whose message may quote the input, reduced to their kind and position."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid {exc.encoding} text (byte {exc.start})"
    yaml = sys.modules.get("yaml")
    if yaml is not None and isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"not valid YAML{where}"
    return None


def _reduced(exc: BaseException) -> str | None:
    """A message without input data for exceptions not written by this project; None if not one."""
    position = _position_only(exc)
    if position is not None:
        return position
    if isinstance(exc, OSError) and exc.strerror:
        what = f"cannot open {exc.filename}: " if exc.filename else ""
        return f"{what}{exc.strerror}"
    module = type(exc).__module__ or ""
    if module.startswith(("botocore.", "boto3.", "s3transfer.")):
        hint = ""
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            hint = " (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        return f"S3: {exc}{hint}"
    return None


def describe(exc: BaseException) -> str:
    """One line for the user: `pixel CMD: error: <this>`."""
    return " ".join(_describe(exc).split())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CliError):
        return str(exc)
    reduced = _reduced(exc)
    if reduced is not None:
        return reduced
    if _raised_by_project(exc):
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        message = str(message)
        cause, seen = exc.__cause__ or exc.__context__, set()
        while cause is not None and id(cause) not in seen:  # "not valid YAML: <snippet>" -> position
            seen.add(id(cause))
            inner = _position_only(cause)
            if inner is not None and str(cause) and str(cause) in message:
                message = message.replace(str(cause), inner.partition(" (")[2].rstrip(")") or "?")
            cause = cause.__cause__ or cause.__context__
        return message or type(exc).__name__
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        key = exc.args[0]
        if isinstance(key, str) and _SAFE_KEY.fullmatch(key):
            return f"missing key {key!r}"
    return f"{type(exc).__name__} (details withheld; {DEBUG_ENV}=1 shows the traceback)"


def add_repeats(parser: argparse.ArgumentParser, default: int = 3) -> None:
    """`--repeats N` for a `pixel bench`: the median ratio of N runs is printed, with its spread."""
    parser.add_argument("--repeats", type=positive_int, default=default,
                        help=f"run the comparison N times; print the median ratio and its min-max (default {default})")
