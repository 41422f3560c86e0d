"""The manifest's JSON Schema and its validation (schema + internal consistency)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from pixel_assets.lib.contract import SPLITS

MANIFEST_VERSION = "1.0"
MANIFEST_NAME = "manifest.json"
EXPORT_KEY = "compiled/final_training_dataset.jsonl"
_HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    text = resources.files("pixel_assets.lib.compiled").joinpath("manifest_schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        manifest_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _provenance_entry_errors(content_hash: Any, entry: Any) -> list[str]:
    """The schema's provenance_map rule, checked in plain Python (the map has one entry per
    conversation; jsonschema over a million entries takes minutes)."""
    where = f"provenance_map/{content_hash}"
    if not (isinstance(content_hash, str) and _HASH_RE.fullmatch(content_hash)):
        return [f"{where}: key is not a sha256:<64 hex> content hash"]
    if not isinstance(entry, dict):
        return [f"{where}: entry is not an object"]
    errors = []
    for field in ("source_key", "source_family", "original_format"):
        if not isinstance(entry.get(field), str) or not entry[field]:
            errors.append(f"{where}: {field} missing or empty")
    steps = entry.get("processing_steps")
    if not isinstance(steps, list) or not steps or not all(type(s) is str for s in steps):
        errors.append(f"{where}: processing_steps must be a non-empty list of strings")
    return errors


def validate_manifest(manifest: dict[str, Any], *, max_errors: int = 50) -> list[str]:
    """Schema violations and internal inconsistencies of a manifest (empty list = valid)."""
    if not isinstance(manifest, dict):
        return ["<root>: manifest is not an object"]
    provenance = manifest.get("provenance_map")
    skeleton = {k: v for k, v in manifest.items() if k != "provenance_map"}
    if isinstance(provenance, dict):
        skeleton["provenance_map"] = {}
    elif provenance is not None:
        skeleton["provenance_map"] = provenance  # let the schema report the wrong type
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}"
        for e in _validator().iter_errors(skeleton)
    ]
    if isinstance(provenance, dict):
        for content_hash, entry in provenance.items():
            errors.extend(_provenance_entry_errors(content_hash, entry))
            if len(errors) >= max_errors:
                break
    if errors:
        return errors[:max_errors]

    # Consistency: the figures must add up.
    splits = manifest["splits"]
    for split in SPLITS:
        shards = splits[split]["shards"]
        if sum(s["conversation_count"] for s in shards) != splits[split]["conversations"]:
            errors.append(f"splits/{split}: conversations != sum of shard conversation_count")
        version = manifest.get("dataset_version")
        data_dir = f"data/{version}/" if version else ""
        for shard in shards:
            if not shard["path"].startswith(f"{data_dir}{split}/{split}_"):
                errors.append(f"splits/{split}: shard {shard['shard_id']} path is not under {split}/")
    total = manifest["total_conversations"]
    if sum(splits[s]["conversations"] for s in SPLITS) != total:
        errors.append("total_conversations != sum of split conversations")
    families = manifest["source_families"]
    if sum(f["conversations"] for f in families.values()) != total:
        errors.append("total_conversations != sum of source_families conversations")
    for name, fam in families.items():
        if sum(fam["splits"].values()) != fam["conversations"]:
            errors.append(f"source_families/{name}: conversations != sum of its splits")
    for split in SPLITS:
        if sum(f["splits"][split] for f in families.values()) != splits[split]["conversations"]:
            errors.append(f"source_families: {split} counts do not add up to splits/{split}")
    if len(provenance) != total:
        errors.append(f"provenance_map has {len(provenance)} entries for {total} conversations")
    if manifest.get("dataset_version") and not manifest["compiled_export"]["path"].startswith(
            f"data/{manifest['dataset_version']}/"):
        errors.append("compiled_export path is not under data/<dataset_version>/")
    if manifest["compiled_export"]["conversation_count"] != total:
        errors.append("compiled_export conversation_count != total_conversations")
    return errors[:max_errors]
