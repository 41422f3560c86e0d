"""Publish a compiled dataset to a DataRoot (local directory or S3) at "final_dataset/".

Order, so a reader never sees a manifest that points at missing or partial shards:

1. delete the previous ``manifest.json`` (shards are about to be overwritten at their canonical
   paths, so the old manifest would no longer match them; "no manifest" means "not published");
2. write every shard, then the compiled export;
3. write ``manifest.json`` last;
4. delete obsolete keys under ``{train,val,test}/`` and ``compiled/`` that the new manifest does not
   reference (left over from a previous, bigger compile).

A failure in 1-3 leaves no manifest; re-running the publication completes it. A failure in 4 leaves
a valid manifest plus unreferenced files, which the next publication removes. Each object write is
atomic on its own (local: write-then-rename; S3: PutObject).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pixel_assets.lib.compiled.build import CompiledDataset
from pixel_assets.lib.compiled.manifest import MANIFEST_NAME, validate_manifest
from pixel_assets.lib.contract import SPLITS, sha256_digest
from pixel_assets.lib.storage import DataRoot

DEFAULT_PREFIX = "final_dataset"
MANAGED_FOLDERS = (*SPLITS, "compiled")


class ManifestError(ValueError):
    """The manifest is missing or invalid."""


def _join(prefix: str, key: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{key}" if prefix else key


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode("utf-8")


def publish_compiled_dataset(
    compiled: CompiledDataset,
    root: DataRoot,
    *,
    prefix: str = DEFAULT_PREFIX,
    on_shard_written: Callable[[str, int], None] | None = None,
    log: Any = None,
) -> str:
    """Write shards, export, then the manifest (last); returns the manifest key.

    ``on_shard_written(key, n_written)`` is called after each shard write (progress, tests).
    ``log``: anything with ``.info(str)`` (a logging.Logger, Dagster's context.log).
    """
    errors = validate_manifest(compiled.manifest)
    if errors:
        raise ManifestError(f"refusing to publish an invalid manifest: {errors[:5]}")
    manifest_key = _join(prefix, MANIFEST_NAME)
    info = log.info if log is not None else (lambda _msg: None)

    root.delete(manifest_key)
    for n, shard in enumerate(compiled.shards, start=1):
        root.write_bytes(_join(prefix, shard.key), shard.data)
        if on_shard_written is not None:
            on_shard_written(shard.key, n)
    info(f"publish: wrote {len(compiled.shards)} shards under {prefix!r}")
    root.write_bytes(_join(prefix, compiled.export_key), compiled.export)
    root.write_bytes(manifest_key, manifest_bytes(compiled.manifest))
    info(f"publish: wrote {MANIFEST_NAME} ({compiled.manifest['total_conversations']} conversations)")

    keep = {_join(prefix, s.key) for s in compiled.shards} | {_join(prefix, compiled.export_key)}
    stale = [
        key
        for folder in MANAGED_FOLDERS
        for key in root.list_keys(_join(prefix, folder) + "/")
        if key not in keep
    ]
    for key in stale:
        root.delete(key)
    if stale:
        info(f"publish: deleted {len(stale)} obsolete files")
    return manifest_key


def read_manifest(root: DataRoot, prefix: str = DEFAULT_PREFIX, *, validate: bool = True) -> dict[str, Any]:
    """The published manifest; ManifestError when it is missing (not published / publication in
    progress) or invalid."""
    key = _join(prefix, MANIFEST_NAME)
    if not root.exists(key):
        raise ManifestError(f"no manifest at {root.uri(key)} (not published, or a publication is in progress)")
    try:
        manifest = json.loads(root.read_bytes(key))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest at {root.uri(key)} is not valid JSON: {exc.msg}") from exc
    if validate:
        errors = validate_manifest(manifest)
        if errors:
            raise ManifestError(f"manifest at {root.uri(key)} is invalid: {errors[:5]}")
    return manifest


def dataset_fingerprint(root: DataRoot, prefix: str = DEFAULT_PREFIX) -> str:
    """sha256 over the manifest and every file in the split and export folders, as stored now
    (key and sha256 of its bytes). Two equal fingerprints mean the same published bytes: the gates
    record it, and training compares it, so shards replaced after verification are noticed even
    when the manifest was left alone."""
    manifest_key = _join(prefix, MANIFEST_NAME)
    manifest = sha256_digest(root.read_bytes(manifest_key)) if root.exists(manifest_key) else None
    files = {key: sha256_digest(root.read_bytes(key)) for key in published_files(root, prefix)}
    return fingerprint_of(manifest_key, manifest, files)


def published_files(root: DataRoot, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Every file key in the split and export folders (S3 "folder" marker objects left out)."""
    return sorted(key for folder in MANAGED_FOLDERS for key in root.list_keys(_join(prefix, folder) + "/")
                  if not key.endswith("/"))


def fingerprint_of(manifest_key: str, manifest_sha256: str | None, files: dict[str, str | None]) -> str:
    """The dataset fingerprint from file digests ("sha256:<hex>", None = missing): the manifest
    first, then the files by key. The gates build it from the bytes they read, so the shards are
    not read a second time."""
    digest = hashlib.sha256()
    for key, sha in [(manifest_key, manifest_sha256), *sorted(files.items())]:
        digest.update(f"{key}\t{sha.removeprefix('sha256:') if sha else 'missing'}\n".encode())
    return "sha256:" + digest.hexdigest()
