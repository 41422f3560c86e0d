"""Write a compiled dataset into one folder of a DataRoot (local directory or S3), unverified.

The pipeline writes this way only into its staging area (``staging/<version>/``); what readers see
under ``final_dataset/`` is promoted from there once every gate passed (``promote.py``). Tests and
benchmarks use it to lay a dataset down directly. Order inside the folder, so a reader never sees a manifest that points at missing or partial shards:

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
import re
from collections.abc import Callable
from typing import Any

from pixel_assets.lib.compiled.build import CompiledDataset
from pixel_assets.lib.compiled.manifest import MANIFEST_NAME, validate_manifest
from pixel_assets.lib.contract import SPLITS, sha256_digest
from pixel_assets.lib.storage import DataRoot

DEFAULT_PREFIX = "final_dataset"
MANAGED_FOLDERS = (*SPLITS, "compiled")
DATA_FOLDER = "data"  # versioned layout: <prefix>/data/<dataset_version>/{train,val,test,compiled}/
VERSION_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}")


class ManifestError(ValueError):
    """The manifest is missing or invalid."""


def join_key(prefix: str, key: str) -> str:
    """A storage key under `prefix` ("" = at the root)."""
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
    manifest_key = join_key(prefix, MANIFEST_NAME)
    info = log.info if log is not None else (lambda _msg: None)

    root.delete(manifest_key)
    for n, shard in enumerate(compiled.shards, start=1):
        root.write_bytes(join_key(prefix, shard.key), shard.data)
        if on_shard_written is not None:
            on_shard_written(shard.key, n)
    info(f"publish: wrote {len(compiled.shards)} shards under {prefix!r}")
    root.write_bytes(join_key(prefix, compiled.export_key), compiled.export)
    root.write_bytes(manifest_key, manifest_bytes(compiled.manifest))
    info(f"publish: wrote {MANIFEST_NAME} ({compiled.manifest['total_conversations']} conversations)")

    keep = {join_key(prefix, s.key) for s in compiled.shards} | {join_key(prefix, compiled.export_key)}
    stale = [
        key
        for folder in MANAGED_FOLDERS
        for key in root.list_keys(join_key(prefix, folder) + "/")
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
    key = join_key(prefix, MANIFEST_NAME)
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


def data_dir_of(manifest: Any) -> str:
    """The folder (relative to the manifest) that holds a versioned dataset's files,
    "data/<dataset_version>"; "" for the unversioned layout (split folders next to the manifest)."""
    version = manifest.get("dataset_version") if isinstance(manifest, dict) else None
    return f"{DATA_FOLDER}/{version}" if isinstance(version, str) and VERSION_PATTERN.fullmatch(version) else ""


def _stored_manifest(root: DataRoot, prefix: str) -> tuple[bytes | None, dict[str, Any] | None]:
    key = join_key(prefix, MANIFEST_NAME)
    if not root.exists(key):
        return None, None
    data = root.read_bytes(key)
    try:
        manifest = json.loads(data)
    except ValueError:
        manifest = None
    return data, manifest if isinstance(manifest, dict) else None


def dataset_fingerprint(root: DataRoot, prefix: str = DEFAULT_PREFIX) -> str:
    """sha256 over the manifest and every file of the dataset it describes, as stored now (key
    relative to ``prefix`` and sha256 of its bytes). Two equal fingerprints mean the same bytes: the
    gates record it, and training compares it, so shards replaced after verification are noticed
    even when the manifest was left alone. Keys are relative, so a staged dataset and the same
    dataset once promoted have the same fingerprint."""
    data, manifest = _stored_manifest(root, prefix)
    files = {key: sha256_digest(root.read_bytes(join_key(prefix, key))) for key in published_files(root, prefix, manifest)}
    return fingerprint_of(MANIFEST_NAME, sha256_digest(data) if data is not None else None, files)


def published_files(root: DataRoot, prefix: str = DEFAULT_PREFIX, manifest: dict[str, Any] | None = None) -> list[str]:
    """Every file of the dataset, relative to ``prefix``: the split and export folders of its data
    folder (S3 "folder" marker objects left out). ``manifest``: the stored one when not given."""
    if manifest is None:
        manifest = _stored_manifest(root, prefix)[1]
    base = join_key(prefix, data_dir_of(manifest))
    strip = len(prefix.strip("/")) + 1 if prefix.strip("/") else 0
    return sorted(key[strip:] for folder in MANAGED_FOLDERS for key in root.list_keys(join_key(base, folder) + "/")
                  if not key.endswith("/"))


def fingerprint_of(manifest_key: str, manifest_sha256: str | None, files: dict[str, str | None]) -> str:
    """The dataset fingerprint from file digests ("sha256:<hex>", None = missing): the manifest
    first, then the files by key (relative to the dataset prefix). The gates build it from the
    bytes they read, so the shards are not read a second time."""
    digest = hashlib.sha256()
    for key, sha in [(manifest_key, manifest_sha256), *sorted(files.items())]:
        digest.update(f"{key}\t{sha.removeprefix('sha256:') if sha else 'missing'}\n".encode())
    return "sha256:" + digest.hexdigest()
