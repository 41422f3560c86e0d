"""The training stack's versions this project was tested with, checked before anything trains.

The code relies on behaviour of these releases (TRL 1.16's fused LM head and DPO reference-adapter
copy, transformers 5's ``warmup_steps`` given a ratio, peft's ``trainable_token_indices``), so an
untested version fails early, naming the package and the tested range, instead of misbehaving in
a GPU run. The ranges equal pyproject.toml's bounds (a test keeps them the same).
"""

from __future__ import annotations

from importlib import metadata

# package: (tested lower bound, exclusive upper bound)
TESTED = {
    "torch": ("2.13.0", "2.14"),
    "transformers": ("5.25", "6"),
    "trl": ("1.16", "1.17"),
    "peft": ("0.21.2", "0.22"),
    "accelerate": ("1.16", "2"),
    "dagster": ("1.13.27", "1.14"),
    "dagster-wandb": ("0.29.27", "0.30"),
}


class UntestedVersionError(RuntimeError):
    """An installed package outside the range the training code was tested with."""


def version_problems(installed: dict[str, str | None] | None = None) -> list[str]:
    """One message per package outside its tested range (``installed``: name -> version, for tests)."""
    from packaging.version import Version

    problems = []
    for name, (low, high) in TESTED.items():
        if installed is not None:
            found = installed.get(name)
        else:
            try:
                found = metadata.version(name)
            except metadata.PackageNotFoundError:
                found = None
        if found is None:
            problems.append(f"{name} is not installed (tested: >={low},<{high})")
            continue
        release = Version(Version(found).base_version)  # 2.13.0+cpu and 5.25.0.dev0 count as their release
        if not Version(low) <= release < Version(high):
            problems.append(f"{name} {found} is outside the tested range >={low},<{high}")
    return problems


def require_tested_versions(installed: dict[str, str | None] | None = None) -> None:
    problems = version_problems(installed)
    if problems:
        raise UntestedVersionError("the training code was not tested with: " + "; ".join(problems)
                                   + " (install the versions in pyproject.toml)")
