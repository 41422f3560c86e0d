"""Reading the compiled dataset as written: manifest, every shard on storage or in the manifest,
the compiled export."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import (
    SHARD_PATH,
    COMPILED_EXPORT,
    DEFAULT_PREFIX,
    MANIFEST_NAME,
    VerificationError,
)
from pixel_assets.lib.compiled.publish import data_dir_of
from pixel_assets.lib.gates.redaction import path_label
from pixel_assets.lib.storage import DataRoot


@dataclass
class ShardFile:
    path: str  # relative to the dataset prefix, e.g. "train/train_000.jsonl"
    split: str
    exists: bool
    sha256: str | None = None
    size_bytes: int | None = None
    line_count: int | None = None
    record_count: int = 0  # lines that parsed as records


@dataclass
class ShardRecord:
    id: str  # "train/train_000.jsonl:12" (1-based line): what offenders are reported as
    split: str  # the split directory it sits in
    record: dict[str, Any]
    path: str = ""  # the shard file, relative to the dataset prefix

    @property
    def meta(self) -> dict[str, Any]:
        m = self.record.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def family(self) -> str:
        return str(self.meta.get("source_family") or "<none>")

    @property
    def stored_hash(self) -> str | None:
        h = self.meta.get("content_hash")
        return h if isinstance(h, str) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        msgs = self.record.get("messages")
        return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


@dataclass
class CompiledDataset:
    root: DataRoot
    prefix: str
    manifest: dict[str, Any]
    manifest_sha256: str
    shards: list[ShardFile]
    records: list[ShardRecord]
    unreadable: list[str]  # ids of lines that are not a JSON record
    export_hashes: Counter | None  # recomputed content hashes of the compiled export, if present
    export_unreadable: int = 0
    export_sha256: str | None = None
    export_identical: bool = False  # the export's bytes are exactly the shards' in split order
    _recomputed: dict[str, str] = field(default_factory=dict, repr=False)
    _derived: dict[tuple, Any] = field(default_factory=dict, repr=False)

    data_dir: str = ""  # "data/<dataset_version>" (versioned layout) or "" (files next to the manifest)

    @property
    def base(self) -> str:
        """Where the split folders and compiled/ sit: the prefix, then the data folder."""
        return "/".join(p for p in (self.prefix, self.data_dir) if p)

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}/{MANIFEST_NAME}" if self.prefix else MANIFEST_NAME

    def key(self, rel: str) -> str:
        """Storage key of a file given relative to the data folder (a shard's path)."""
        return f"{self.base}/{rel}" if self.base else rel

    def rel_to_prefix(self, rel: str) -> str:
        return f"{self.data_dir}/{rel}" if self.data_dir else rel

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """A view derived from the records (e.g. the recomputed split groups), computed once per
        dataset however many gates ask for it; `key` names the view and its inputs."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def recomputed_hash(self, rec: ShardRecord) -> str:
        if rec.id not in self._recomputed:
            self._recomputed[rec.id] = contract.content_hash(rec.messages)
        return self._recomputed[rec.id]


def find_dataset_prefix(root: DataRoot) -> str:
    """'' when manifest.json sits at the root, else 'final_dataset' (a data root was given)."""
    if root.exists(MANIFEST_NAME):
        return ""
    if root.exists(f"{DEFAULT_PREFIX}/{MANIFEST_NAME}"):
        return DEFAULT_PREFIX
    raise VerificationError(
        f"no {MANIFEST_NAME} at {root.uri(MANIFEST_NAME)} nor at {root.uri(DEFAULT_PREFIX + '/' + MANIFEST_NAME)}"
    )


@dataclass(frozen=True)
class ManifestShard:
    split: str  # the key of `splits` it is listed under
    path: str  # relative to the prefix
    entry: dict[str, Any]


def manifest_shards(manifest: dict[str, Any], prefix: str, data_dir: str = "") -> list[ManifestShard]:
    """Every shard entry of the manifest in its order, duplicates included (the hash gate reports
    them: a trainer following the manifest would read such a shard twice)."""
    out: list[ManifestShard] = []
    splits = manifest.get("splits") if isinstance(manifest.get("splits"), dict) else {}
    for split, info in splits.items():
        entries = info.get("shards") if isinstance(info, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            entry = entry if isinstance(entry, dict) else {}  # no path: reported as misplaced
            path = str(entry.get("path", ""))
            for folder in (prefix, data_dir):  # paths are relative to the data folder from here on
                if folder and path.startswith(folder + "/"):
                    path = path[len(folder) + 1:]
            out.append(ManifestShard(str(split), path, entry))
    return out


def manifest_shard_paths(manifest: dict[str, Any], prefix: str, data_dir: str = "") -> dict[str, ManifestShard]:
    """path relative to the prefix -> its first manifest entry."""
    out: dict[str, ManifestShard] = {}
    for shard in manifest_shards(manifest, prefix, data_dir):
        out.setdefault(shard.path, shard)
    return out


def shard_path_split(path: str) -> str | None:
    """The split a shard path belongs to, or None when it is not `<split>/<split>_NNN.jsonl`."""
    m = SHARD_PATH.match(path)
    return m.group(1) if m and m.group(1) == m.group(2) else None


def _parse_lines(data: bytes, label: str) -> tuple[list[tuple[str, dict]], list[str], int]:
    """(id, record) per parsable line, ids of unparsable lines, and the number of lines."""
    parsed, bad, n = [], [], 0
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        n += 1
        rid = f"{label}:{lineno}"
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad.append(rid)
            continue
        if isinstance(obj, dict) and isinstance(obj.get("messages"), list) and isinstance(obj.get("metadata"), dict):
            parsed.append((rid, obj))
        else:
            bad.append(rid)
    return parsed, bad, n


def load_compiled_dataset(root: DataRoot, prefix: str | None = None) -> CompiledDataset:
    """Read manifest and every shard (those on storage plus those the manifest names)."""
    prefix = find_dataset_prefix(root) if prefix is None else prefix.strip("/")
    manifest_key = f"{prefix}/{MANIFEST_NAME}" if prefix else MANIFEST_NAME
    if not root.exists(manifest_key):
        raise VerificationError(f"no manifest at {root.uri(manifest_key)}")
    manifest_bytes = root.read_bytes(manifest_key)
    try:
        manifest = json.loads(manifest_bytes)
    except json.JSONDecodeError as exc:
        raise VerificationError(f"manifest {root.uri(manifest_key)} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise VerificationError(f"manifest {root.uri(manifest_key)} is not a JSON object")

    data_dir = data_dir_of(manifest)
    base = "/".join(p for p in (prefix, data_dir) if p)
    listed = manifest_shard_paths(manifest, prefix, data_dir)
    # Every file under a split folder, whatever its name or depth: a trainer globbing the folder
    # would read it, so it is read here too and the hash gate fails it unless the manifest lists it.
    on_storage: dict[str, str] = {}
    for split in contract.SPLITS:
        for key in root.list_keys(f"{base}/{split}/" if base else f"{split}/"):
            if not key.endswith("/"):  # an S3 "folder" marker object, not a file
                on_storage[key[len(base) + 1:] if base else key] = split
    shards: list[ShardFile] = []
    records: list[ShardRecord] = []
    unreadable: list[str] = []
    # The export is every shard in train, val, test order; hashing that concatenation while the
    # shards are read lets an identical export be confirmed without parsing it again.
    concatenation = hashlib.sha256()

    def split_order(rel: str) -> tuple[int, str]:
        split = on_storage.get(rel) or listed[rel].split
        return (contract.SPLITS.index(split) if split in contract.SPLITS else len(contract.SPLITS), rel)

    for rel in sorted(set(on_storage) | set(listed), key=split_order):
        split = on_storage.get(rel) or listed[rel].split
        key = f"{base}/{rel}" if base else rel
        if rel not in on_storage and not root.exists(key):
            shards.append(ShardFile(path=rel, split=split, exists=False))
            continue
        data = root.read_bytes(key)
        concatenation.update(data)
        parsed, bad, n = _parse_lines(data, path_label(rel))
        shards.append(ShardFile(path=rel, split=split, exists=True, sha256=contract.sha256_digest(data),
                                size_bytes=len(data), line_count=n, record_count=len(parsed)))
        records += [ShardRecord(id=rid, split=split, record=rec, path=rel) for rid, rec in parsed]
        unreadable += bad

    export_key = f"{base}/{COMPILED_EXPORT}" if base else COMPILED_EXPORT
    export_hashes, export_bad, export_sha, export_identical = None, 0, None, False
    if root.exists(export_key):
        export_bytes = root.read_bytes(export_key)
        export_sha = contract.sha256_digest(export_bytes)
        export_identical = export_sha == "sha256:" + concatenation.hexdigest()
        if not export_identical:  # differs from the shards' bytes: compare what it holds
            parsed, bad, _ = _parse_lines(export_bytes, COMPILED_EXPORT)
            export_hashes = Counter(contract.content_hash(r.get("messages") or []) for _, r in parsed)
            export_bad = len(bad)
    return CompiledDataset(root=root, prefix=prefix, data_dir=data_dir, manifest=manifest,
                           manifest_sha256=contract.sha256_digest(manifest_bytes), shards=shards,
                           records=records, unreadable=unreadable, export_hashes=export_hashes,
                           export_unreadable=export_bad, export_sha256=export_sha,
                           export_identical=export_identical)

