"""Verify, then publish: a compile is staged, verified, and only then promoted (SPEC §5/§6).

Layout under the data root::

    staging/<version>/manifest.json                  the staged manifest (written last)
    staging/<version>/data/<version>/{train,val,test,compiled}/...
    staging/<version>/split_ledger.parquet           the ledger this compile would commit
    staging/<version>/verification_report.json       the gates' verdicts on the staged bytes
    final_dataset/manifest.json                      the ONE object that changes on promotion
    final_dataset/data/<version>/...                 immutable: written once, never rewritten
    final_dataset/verification_report.json           the report of the promoted version

``<version>`` is ``<generated_at as YYYYMMDDTHHMMSSZ>-<12 hex of the shards' digests>``: sortable
by time and different whenever the content differs. Shard paths in the manifest include the data
folder (``data/<version>/train/train_000.jsonl``), so a reader joins the manifest's folder and the
path, and a reader holding an older manifest keeps reading that version's bytes until it is pruned
(``keep_versions`` versions are kept, the current one included).

Promotion copies the staged data files to ``final_dataset/data/<version>/`` (a file already there
must have the same bytes), commits the staged split ledger, copies the report, writes the manifest
last, prunes versions and stagings beyond ``keep_versions``, and removes the promoted staging
folder. A compile whose gates failed is never promoted: ``final_dataset/`` stays byte for byte as
it was, and its staging folder (with its verification_report.json) stays for reading.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from pixel_assets.lib.compiled.build import CompiledDataset
from pixel_assets.lib.compiled.manifest import MANIFEST_NAME
from pixel_assets.lib.compiled.publish import (
    DATA_FOLDER,
    DEFAULT_PREFIX,
    MANAGED_FOLDERS,
    join_key,
    VERSION_PATTERN,
    data_dir_of,
    dataset_fingerprint,
    publish_compiled_dataset,
    published_files,
)
from pixel_assets.lib.contract import sha256_digest
from pixel_assets.lib.storage import DataRoot

STAGING_PREFIX = "staging"
STAGED_LEDGER = "split_ledger.parquet"
REPORT_NAME = "verification_report.json"
DEFAULT_KEEP_VERSIONS = 3


class PromotionError(RuntimeError):
    """The staged dataset cannot be promoted (changed since verification, immutable file differs)."""


def dataset_version(compiled: CompiledDataset) -> str:
    """``<generated_at compact>-<12 hex over the shard digests>``."""
    stamp = "".join(c for c in str(compiled.manifest["generated_at"])[:19] if c.isdigit())
    digest = hashlib.sha256("\n".join(s.sha256 for s in compiled.shards).encode()).hexdigest()[:12]
    return f"{stamp[:8]}T{stamp[8:14]}Z-{digest}"


def versioned(compiled: CompiledDataset, version: str | None = None) -> CompiledDataset:
    """The same dataset with its files under ``data/<version>/`` and ``dataset_version`` in the
    manifest (paths in the manifest carry the data folder)."""
    version = version or dataset_version(compiled)
    if not VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"dataset version {version!r} is not <YYYYMMDDTHHMMSSZ>-<12 hex>")
    data_dir = f"{DATA_FOLDER}/{version}"
    manifest = copy.deepcopy(compiled.manifest)
    manifest["dataset_version"] = version
    for info in manifest["splits"].values():
        for entry in info["shards"]:
            entry["path"] = f"{data_dir}/{entry['path']}"
    manifest["compiled_export"]["path"] = f"{data_dir}/{manifest['compiled_export']['path']}"
    shards = [replace(s, key=f"{data_dir}/{s.key}") for s in compiled.shards]
    return CompiledDataset(shards=shards, manifest=manifest, export_key=f"{data_dir}/{compiled.export_key}",
                           stats=dict(compiled.stats))


def staging_prefix(version: str) -> str:
    return f"{STAGING_PREFIX}/{version}"


@dataclass(frozen=True)
class StagedDataset:
    version: str
    prefix: str  # "staging/<version>"
    manifest_key: str


def stage_compiled_dataset(compiled: CompiledDataset, root: DataRoot, *, ledger_parquet: bytes | None = None,
                           log: Any = None) -> StagedDataset:
    """Write a (versioned) compiled dataset into ``staging/<version>/``, manifest last, with the
    split ledger this compile would commit. Nothing under ``final_dataset/`` is touched."""
    if not compiled.manifest.get("dataset_version"):
        compiled = versioned(compiled)
    version = compiled.manifest["dataset_version"]
    prefix = staging_prefix(version)
    root.delete(join_key(prefix, REPORT_NAME))  # a report of an earlier attempt is not this one's
    if ledger_parquet is not None:
        root.write_bytes(join_key(prefix, STAGED_LEDGER), ledger_parquet)
    manifest_key = publish_compiled_dataset(compiled, root, prefix=prefix, log=log)
    return StagedDataset(version=version, prefix=prefix, manifest_key=manifest_key)


@dataclass
class Promotion:
    version: str
    manifest_key: str
    fingerprint: str
    files_written: int
    files_already_there: int
    ledger_committed: bool
    pruned_versions: list[str]
    pruned_files: int


def promote_staged_dataset(root: DataRoot, version: str, *, prefix: str = DEFAULT_PREFIX,
                           expected_fingerprint: str | None = None, keep_versions: int = DEFAULT_KEEP_VERSIONS,
                           ledger_key: str | None = None, log: Any = None) -> Promotion:
    """Promote ``staging/<version>/`` to ``prefix`` (see the module docstring). ``expected_fingerprint``:
    the fingerprint the gates verified; the staged bytes must still have it. ``ledger_key``: where
    the committed split ledger lives (pixel_assets.lib.splits.LEDGER_KEY by default)."""
    if keep_versions < 1:
        raise ValueError("keep_versions must be >= 1")
    info = log.info if log is not None else (lambda _msg: None)
    staged = staging_prefix(version)
    manifest_key = join_key(staged, MANIFEST_NAME)
    if not root.exists(manifest_key):
        raise PromotionError(f"nothing staged at {root.uri(manifest_key)}")
    fingerprint = dataset_fingerprint(root, staged)
    if expected_fingerprint is not None and fingerprint != expected_fingerprint:
        raise PromotionError(f"staged dataset {version} changed since it was verified "
                             f"(verified {expected_fingerprint[:19]}, now {fingerprint[:19]})")
    manifest_bytes = root.read_bytes(manifest_key)
    written = present = 0
    for rel in published_files(root, staged):
        data = root.read_bytes(join_key(staged, rel))
        target = join_key(prefix, rel)
        if root.exists(target):  # immutable: the same version's file must hold the same bytes
            if sha256_digest(root.read_bytes(target)) != sha256_digest(data):
                raise PromotionError(f"{root.uri(target)} exists with other bytes; published files are never rewritten")
            present += 1
            continue
        root.write_bytes(target, data)
        written += 1
    ledger_committed = False
    if root.exists(join_key(staged, STAGED_LEDGER)):
        from pixel_assets.lib.splits import LEDGER_KEY

        root.write_bytes(ledger_key or LEDGER_KEY, root.read_bytes(join_key(staged, STAGED_LEDGER)))
        ledger_committed = True
    _copy_report(root, staged, prefix)
    root.write_bytes(join_key(prefix, MANIFEST_NAME), manifest_bytes)  # last: the publication itself
    info(f"promote: {version} published ({written} files written, {present} already there)")
    pruned_versions, pruned_files = prune_versions(root, prefix, current=version, keep_versions=keep_versions)
    for key in root.list_keys(staged + "/"):
        root.delete(key)
    prune_stagings(root, keep=keep_versions)
    if pruned_versions:
        info(f"promote: pruned {len(pruned_versions)} old versions ({pruned_files} files)")
    return Promotion(version=version, manifest_key=join_key(prefix, MANIFEST_NAME), fingerprint=fingerprint,
                     files_written=written, files_already_there=present, ledger_committed=ledger_committed,
                     pruned_versions=pruned_versions, pruned_files=pruned_files)


def _copy_report(root: DataRoot, staged: str, prefix: str) -> None:
    """The staged report, now naming the published manifest (same bytes, same fingerprint)."""
    key = join_key(staged, REPORT_NAME)
    if not root.exists(key):
        return
    report = json.loads(root.read_bytes(key))
    published = join_key(prefix, MANIFEST_NAME)
    report["manifest"].update(key=published, uri=root.uri(published), staged_as=report["manifest"]["key"])
    root.write_text(join_key(prefix, REPORT_NAME), json.dumps(report, indent=1, default=str))


def published_versions(root: DataRoot, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Versions with files under ``<prefix>/data/``, oldest first."""
    base = join_key(prefix, DATA_FOLDER) + "/"
    found = {key[len(base):].split("/", 1)[0] for key in root.list_keys(base)}
    return sorted(v for v in found if VERSION_PATTERN.fullmatch(v))


def prune_versions(root: DataRoot, prefix: str, *, current: str, keep_versions: int) -> tuple[list[str], int]:
    """Delete every version but the current one and the ``keep_versions - 1`` newest others, and
    the files of the unversioned layout (no versioned manifest references them)."""
    others = [v for v in published_versions(root, prefix) if v != current]
    drop = others[: max(0, len(others) - (keep_versions - 1))]
    keys = [k for v in drop for k in root.list_keys(join_key(prefix, f"{DATA_FOLDER}/{v}") + "/")]
    keys += [k for folder in MANAGED_FOLDERS for k in root.list_keys(join_key(prefix, folder) + "/")]
    for key in keys:
        root.delete(key)
    return drop, len(keys)


def prune_stagings(root: DataRoot, *, keep: int) -> list[str]:
    """Keep the ``keep`` newest staging folders (failed attempts, kept for their reports)."""
    base = STAGING_PREFIX + "/"
    versions = sorted({k[len(base):].split("/", 1)[0] for k in root.list_keys(base)})
    drop = versions[: max(0, len(versions) - keep)]
    for v in drop:
        for key in root.list_keys(join_key(base, v) + "/"):
            root.delete(key)
    return drop


def is_versioned(manifest: dict[str, Any]) -> bool:
    return bool(data_dir_of(manifest))
