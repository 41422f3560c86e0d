"""The family registry (SPEC §2): one YAML file, validated on load with errors naming the entry."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEFAULT_REGISTRY = "families.yaml"  # in pixel_assets/config/

# The 14 families of the seed contract: the registry must declare each of them as required.
SEED_REQUIRED_FAMILIES = (
    "edge_case_generator", "edge_case_resulting_chats", "edge_case_synthetic",
    "long_running_therapy", "mental_health_datasets", "video_transcripts", "voice_persona",
    "safety_guardrails_annihilator", "sarcasm", "cptsd", "addiction", "experimental",
    "roleplay_simulator", "dpo_preference",
)

# Source formats and their options live in lib/sources.py (the ingest extractors read them too).
from pixel_assets.lib.sources import (  # noqa: E402,F401  (re-exported)
    DIALOG_OPTIONS, FORMAT_OPTIONS, ROW_FORMATS_OF_HF_DATASET, Source, accepted_options,
)

HOLDOUT_MODES = ("none", "test_only", "test_slice")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class RegistryError(ValueError):
    """The registry file is invalid; the message names the offending entry."""


@dataclass(frozen=True)
class Holdout:
    mode: str = "none"
    fraction: float = 0.0
    rationale: str = ""


@dataclass(frozen=True)
class Family:
    name: str
    required: bool
    license_tag: str
    phase: str
    sources: tuple[Source, ...]
    holdout: Holdout = Holdout()
    enabled: bool = True


@dataclass(frozen=True)
class Registry:
    families: tuple[Family, ...]

    def __getitem__(self, name: str) -> Family:
        for family in self.families:
            if family.name == name:
                return family
        raise KeyError(f"unknown family {name!r}; registry has: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.families]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.families if f.required]

    def holdouts(self) -> dict[str, Holdout]:
        return {f.name: f.holdout for f in self.families if f.holdout.mode != "none"}


def _fail(where: str, message: str) -> RegistryError:
    return RegistryError(f"registry entry {where}: {message}")


def _parse_source(where: str, raw: Any) -> Source:
    if not isinstance(raw, dict):
        raise _fail(where, "a source must be a mapping with 'path' and 'format'")
    unknown = set(raw) - {"path", "format", "options"}
    if unknown:
        raise _fail(where, f"unknown source keys {sorted(unknown)}")
    path, fmt, options = raw.get("path"), raw.get("format"), raw.get("options") or {}
    if not isinstance(path, str) or not path.strip():
        raise _fail(where, "'path' must be a non-empty string (glob or s3:// URI)")
    if fmt not in FORMAT_OPTIONS:
        raise _fail(where, f"unknown format {fmt!r}; known formats: {', '.join(FORMAT_OPTIONS)}")
    if not isinstance(options, dict):
        raise _fail(where, "'options' must be a mapping")
    row_format = options.get("row_format", FORMAT_OPTIONS["hf_dataset"]["row_format"])
    if fmt == "hf_dataset" and row_format not in ROW_FORMATS_OF_HF_DATASET:
        raise _fail(where, f"hf_dataset row_format {row_format!r} is not one of {', '.join(ROW_FORMATS_OF_HF_DATASET)}")
    accepted = accepted_options(fmt, row_format)
    bad = set(options) - set(accepted)
    if bad:
        bad_names = sorted(map(str, bad))
        hints = [f"{close[0]!r} for {b!r}" for b in bad_names if (close := difflib.get_close_matches(b, accepted, 1))]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise _fail(where, f"format {fmt!r} has no options {bad_names}{hint}; it accepts {sorted(accepted)}")
    source = Source(path=path, format=fmt, options=dict(options))
    # Values too (a misspelt `consecutive_turns: merg`), so the code location fails on load naming
    # the entry rather than a run failing later. Lazy import: the loaders import this module.
    from pixel_assets.lib.ingest.formats import IngestConfigError, validate_options

    try:
        validate_options(source)
    except IngestConfigError as exc:
        raise _fail(where, str(exc)) from None
    return source


def _parse_holdout(where: str, raw: Any) -> Holdout:
    if raw is None:
        return Holdout()
    if not isinstance(raw, dict) or raw.get("mode") not in HOLDOUT_MODES:
        raise _fail(where, f"holdout.mode must be one of {HOLDOUT_MODES}")
    mode = raw["mode"]
    fraction = raw.get("fraction", 1.0 if mode == "test_only" else 0.0)
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool):
        raise _fail(where, "holdout.fraction must be a number")
    if mode == "test_slice" and not 0 < fraction < 1:
        raise _fail(where, f"holdout.fraction for test_slice must be in (0, 1), got {fraction}")
    return Holdout(mode=mode, fraction=float(fraction), rationale=str(raw.get("rationale", "")))


def parse_registry(data: Any) -> Registry:
    if not isinstance(data, dict) or not isinstance(data.get("families"), list):
        raise RegistryError("registry must be a mapping with a 'families' list")
    families: list[Family] = []
    seen: set[str] = set()
    allowed = {"name", "required", "enabled", "license_tag", "phase", "holdout", "sources"}
    for i, raw in enumerate(data["families"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        where = f"families[{i}] (name={name!r})"
        if not isinstance(raw, dict):
            raise _fail(where, "must be a mapping")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _fail(where, "'name' must be lower_snake_case")
        if name in seen:
            raise _fail(where, "duplicate family name")
        seen.add(name)
        unknown = set(raw) - allowed
        if unknown:
            raise _fail(where, f"unknown keys {sorted(unknown)}")
        for key in ("license_tag", "phase"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise _fail(where, f"'{key}' must be a non-empty string")
        for key in ("required", "enabled"):
            if key in raw and not isinstance(raw[key], bool):
                raise _fail(where, f"'{key}' must be true or false")
        sources = raw.get("sources")
        if not isinstance(sources, list) or not sources:
            raise _fail(where, "'sources' must be a non-empty list")
        families.append(
            Family(
                name=name,
                required=raw.get("required", False),
                enabled=raw.get("enabled", True),
                license_tag=raw["license_tag"],
                phase=raw["phase"],
                holdout=_parse_holdout(where, raw.get("holdout")),
                sources=tuple(_parse_source(f"{where} sources[{j}]", s) for j, s in enumerate(sources)),
            )
        )
    missing = [f for f in SEED_REQUIRED_FAMILIES if f not in seen]
    if missing:
        raise RegistryError(f"registry lacks required seed families: {', '.join(missing)}")
    not_required = [f.name for f in families if f.name in SEED_REQUIRED_FAMILIES and not f.required]
    if not_required:
        raise RegistryError(f"seed families must be required: true: {', '.join(not_required)}")
    return Registry(families=tuple(families))


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate the registry (default: the packaged file, or $PIXEL_REGISTRY)."""
    import os

    path = path or os.environ.get("PIXEL_REGISTRY")
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("pixel_assets.config").joinpath(DEFAULT_REGISTRY).read_text("utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"registry is not valid YAML: {exc}") from exc
    return parse_registry(data)
