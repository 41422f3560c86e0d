"""The eight verification gates of SPEC §6, one implementation for Dagster and `pixel verify`.

Every gate recomputes its verdict from the shards as written (bytes re-read, hashes recomputed,
records re-parsed); the manifest is only the thing being checked, never the source of a count.
Gate figures and offenders carry counts, record ids ("train/train_000.jsonl:12") and content
hashes only, never message text: a field value is shown only when it is one of the values it may
take (a split, a registry family), anything else as a short hash ("value sha256:1a2b3c4d").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.coverage import CoverageThresholds, coverage_status
from pixel_assets.lib.registry import HOLDOUT_MODES, Registry, load_registry
from pixel_assets.lib.splits import DEFAULT_SALT, HOLDOUT_MARKERS
from pixel_assets.lib.storage import DataRoot

DEFAULT_PREFIX = "final_dataset"
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "verification_report.json"
COMPILED_EXPORT = "compiled/final_training_dataset.jsonl"

# Gate names double as the Dagster asset-check names on `compiled_dataset`.
GATE_NAMES = ("coverage", "leakage", "distribution", "pii", "provenance", "hash", "split", "stats")
GATE_TITLES = {
    "coverage": "1 Coverage: every required family has compiled conversations",
    "leakage": "2 Leakage: no hash, near-duplicate cluster or first user turn in two splits",
    "distribution": "3 Distribution: train/val/test shares of non-holdout families within tolerance",
    "pii": "4 PII: no requires_review record, no structured PII in a re-scan",
    "provenance": "5 Provenance: records meet the record contract, full provenance, a matching provenance_map entry",
    "hash": "6 Hash: content hashes recompute, shard sha256/count/size equal the manifest",
    "split": "7 Split: holdout families and holdout slices only in test",
    "stats": "8 Stats: manifest statistics equal the figures recomputed from the shards",
}
# The only place a shard may sit: `<split>/<split>_NNN.jsonl` (both splits the same).
_SHARD_PATH = re.compile(r"^(train|val|test)/(train|val|test)_\d{3,}\.jsonl$")
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9_./-]{1,200}$", re.ASCII)  # shown as is; other paths as a hash
_HASH_PREFIX = re.compile(r"^sha256:[0-9a-f]*$")


class VerificationError(RuntimeError):
    """The compiled dataset cannot be verified at all (no manifest, unreadable manifest)."""


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gates. Environment: PIXEL_GATE_<FIELD> (e.g. PIXEL_GATE_MIN_PRESENT=50)."""

    # coverage: >= min_present conversations = "present"; >= min_partial = "partial" (passes,
    # flagged); below = "missing" (fails). Same defaults as the coverage report asset.
    min_present: int = CoverageThresholds.min_present
    min_partial: int = CoverageThresholds.min_partial
    train_min: float = 0.85
    train_max: float = 0.95
    val_min: float = 0.03
    val_max: float = 0.07
    test_min: float = 0.03
    test_max: float = 0.07
    near_dup_threshold: float = 0.8  # Jaccard at which two records count as one cluster
    pii_min_score: float = 0.6  # structured PII re-scan: "high confidence" floor
    split_salt: str = DEFAULT_SALT  # must equal the salt the split stage used
    max_offenders: int = 20  # ids listed per problem kind of a gate (all are counted)

    def __post_init__(self) -> None:
        CoverageThresholds(self.min_present, self.min_partial)  # validates the pair
        for split in contract.SPLITS:
            lo, hi = self.share_bounds(split)
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"GateConfig: {split} share bounds must satisfy 0 <= min <= max <= 1")

    def share_bounds(self, split: str) -> tuple[float, float]:
        return getattr(self, f"{split}_min"), getattr(self, f"{split}_max")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> GateConfig:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"PIXEL_GATE_{f.name.upper()}")
            if raw not in (None, ""):
                values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
        return cls(**values)


@dataclass
class GateResult:
    """One gate's verdict. `figures`: what it measured in the shards (name -> number/str);
    `settings`: what it judged them against (GateConfig values, registry policy), kept apart so the
    UI shows them as text, not as a time series; `table`: optional per-family rows."""

    name: str
    passed: bool
    message: str
    figures: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # Per problem kind: its first max_offenders ids/hashes and how many there are. Capped per kind,
    # so a flood of one kind (say 90 exact-hash overlaps) cannot hide the others.
    offenders_by_kind: dict[str, list[str]] = field(default_factory=dict)
    offender_counts: dict[str, int] = field(default_factory=dict)
    table: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return GATE_TITLES[self.name]

    @property
    def offenders(self) -> list[str]:
        """Every listed offender, kind after kind."""
        return [o for items in self.offenders_by_kind.values() for o in items]

    @property
    def offender_count(self) -> int:
        """All offenders, listed or not."""
        return sum(self.offender_counts.values())

    def to_dict(self) -> dict[str, Any]:
        # The flat list and the total too, for readers that do not care about kinds.
        return {"title": self.title, **asdict(self), "offenders": self.offenders, "offender_count": self.offender_count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        # Every field required: a report of an older layout raises KeyError (current_report then
        # verifies again instead of showing a report without its offenders).
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def markdown(self) -> str:
        """A short table a reviewer reads in the Dagster UI (no raw text, ids and hashes only)."""
        lines = [f"**{self.title}**: {'PASSED' if self.passed else 'FAILED'}: {self.message}", "",
                 "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_md(v)} |" for k, v in self.figures.items()]
        if self.settings:
            lines += ["", "| setting | value |", "|---|---|"]
            lines += [f"| {k} | {_md(str(v))} |" for k, v in self.settings.items()]  # as configured, not rounded
        if self.table:
            cols = list(self.table[0])
            lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(_md(row.get(c)) for c in cols) + " |" for row in self.table]
        if self.offender_counts:
            kinds = len(self.offender_counts)
            lines += ["", f"Offenders: {self.offender_count} in {kinds} kind{'s' if kinds > 1 else ''}"]
            for kind, n in self.offender_counts.items():  # a heading per kind: none hides another
                shown = self.offenders_by_kind.get(kind, [])
                lines += ["", f"**{_md(kind)}** ({n}{f', first {len(shown)}' if len(shown) < n else ''}):", ""]
                lines += [f"- `{o}`" for o in shown]
        return "\n".join(lines)


def _md(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


@dataclass
class VerificationReport:
    manifest_key: str
    manifest_uri: str
    manifest_sha256: str
    manifest_generated_at: str | None
    verified_at: str
    gates: list[GateResult]
    config: dict[str, Any] = field(default_factory=dict)  # the GateConfig the verdicts were made with
    dataset_fingerprint: str = ""  # the published bytes verified (compiled.dataset_fingerprint)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed_gates(self) -> list[str]:
        return [g.name for g in self.gates if not g.passed]

    def gate(self, name: str) -> GateResult:
        return next(g for g in self.gates if g.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed_gates": self.failed_gates,
            "manifest": {"key": self.manifest_key, "uri": self.manifest_uri,
                         "sha256": self.manifest_sha256, "generated_at": self.manifest_generated_at},
            "verified_at": self.verified_at,
            "config": self.config,
            "dataset_fingerprint": self.dataset_fingerprint,
            "gates": {g.name: g.to_dict() for g in self.gates},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerificationReport:
        manifest = data["manifest"]
        gates = [GateResult.from_dict(g) for g in data["gates"].values()]
        return cls(manifest_key=manifest["key"], manifest_uri=manifest["uri"], manifest_sha256=manifest["sha256"],
                   manifest_generated_at=manifest["generated_at"], verified_at=data["verified_at"],
                   gates=gates, config=data.get("config") or {},
                   dataset_fingerprint=data.get("dataset_fingerprint") or "")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str)

    def markdown(self) -> str:
        rows = [f"| {g.name} | {'PASSED' if g.passed else 'FAILED'} | {_md(g.message)} |" for g in self.gates]
        return "\n".join([
            f"Manifest `{self.manifest_key}` {self.manifest_sha256} (generated_at {self.manifest_generated_at})",
            "", "| gate | verdict | summary |", "|---|---|---|", *rows,
        ])

    def text(self) -> str:
        lines = [f"manifest {self.manifest_uri}", f"  sha256 {self.manifest_sha256}",
                 f"  generated_at {self.manifest_generated_at}", ""]
        for g in self.gates:
            lines.append(f"[{'PASS' if g.passed else 'FAIL'}] {g.title}")
            lines.append(f"       {g.message}")
            for kind, n in g.offender_counts.items():  # up to five of each kind
                listed = g.offenders_by_kind.get(kind, [])
                lines.append(f"       {kind} ({n}):")
                lines += [f"         - {o}" for o in listed[:5]]
                if n > 5:  # --json lists up to max_offenders of each kind
                    lines.append(f"         ... {n - 5} more" + (" (see --json)" if len(listed) > 5 else ""))
        lines += ["", f"{len(self.gates) - len(self.failed_gates)}/{len(self.gates)} gates passed"
                  + (f"; FAILED: {', '.join(self.failed_gates)}" if self.failed_gates else "")]
        return "\n".join(lines)


# --- reading the compiled dataset as written ------------------------------------------------


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
    _holdouts: dict[tuple, dict[str, str]] = field(default_factory=dict, repr=False)

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

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


def _manifest_shards(manifest: dict[str, Any], prefix: str) -> list[ManifestShard]:
    """Every shard entry of the manifest in its order, duplicates included (the hash gate reports
    them: a trainer following the manifest would read such a shard twice)."""
    out: list[ManifestShard] = []
    splits = manifest.get("splits") if isinstance(manifest.get("splits"), dict) else {}
    for split, info in splits.items():
        entries = info.get("shards") if isinstance(info, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            entry = entry if isinstance(entry, dict) else {}  # no path: reported as misplaced
            path = str(entry.get("path", ""))
            if prefix and path.startswith(prefix + "/"):
                path = path[len(prefix) + 1:]
            out.append(ManifestShard(str(split), path, entry))
    return out


def _manifest_shard_paths(manifest: dict[str, Any], prefix: str) -> dict[str, ManifestShard]:
    """path relative to the prefix -> its first manifest entry."""
    out: dict[str, ManifestShard] = {}
    for shard in _manifest_shards(manifest, prefix):
        out.setdefault(shard.path, shard)
    return out


def _shard_path_split(path: str) -> str | None:
    """The split a shard path belongs to, or None when it is not `<split>/<split>_NNN.jsonl`."""
    m = _SHARD_PATH.match(path)
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

    listed = _manifest_shard_paths(manifest, prefix)
    # Every file under a split folder, whatever its name or depth: a trainer globbing the folder
    # would read it, so it is read here too and the hash gate fails it unless the manifest lists it.
    on_storage: dict[str, str] = {}
    for split in contract.SPLITS:
        for key in root.list_keys(f"{prefix}/{split}/" if prefix else f"{split}/"):
            if not key.endswith("/"):  # an S3 "folder" marker object, not a file
                on_storage[key[len(prefix) + 1:] if prefix else key] = split
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
        key = f"{prefix}/{rel}" if prefix else rel
        if rel not in on_storage and not root.exists(key):
            shards.append(ShardFile(path=rel, split=split, exists=False))
            continue
        data = root.read_bytes(key)
        concatenation.update(data)
        parsed, bad, n = _parse_lines(data, _path_label(rel))
        shards.append(ShardFile(path=rel, split=split, exists=True, sha256=contract.sha256_digest(data),
                                size_bytes=len(data), line_count=n, record_count=len(parsed)))
        records += [ShardRecord(id=rid, split=split, record=rec, path=rel) for rid, rec in parsed]
        unreadable += bad

    export_key = f"{prefix}/{COMPILED_EXPORT}" if prefix else COMPILED_EXPORT
    export_hashes, export_bad, export_sha, export_identical = None, 0, None, False
    if root.exists(export_key):
        export_bytes = root.read_bytes(export_key)
        export_sha = contract.sha256_digest(export_bytes)
        export_identical = export_sha == "sha256:" + concatenation.hexdigest()
        if not export_identical:  # differs from the shards' bytes: compare what it holds
            parsed, bad, _ = _parse_lines(export_bytes, COMPILED_EXPORT)
            export_hashes = Counter(contract.content_hash(r.get("messages") or []) for _, r in parsed)
            export_bad = len(bad)
    return CompiledDataset(root=root, prefix=prefix, manifest=manifest,
                           manifest_sha256=contract.sha256_digest(manifest_bytes), shards=shards,
                           records=records, unreadable=unreadable, export_hashes=export_hashes,
                           export_unreadable=export_bad, export_sha256=export_sha,
                           export_identical=export_identical)


# --- helpers -------------------------------------------------------------------------------


def _result(name: str, problems: dict[str, list[str]], ok_message: str, config: GateConfig,
            figures: dict[str, Any], table: list[dict[str, Any]] | None = None,
            settings: dict[str, Any] | None = None) -> GateResult:
    """Fail when any problem list is non-empty; the message names each problem kind and its count.
    Offenders are listed per kind, up to max_offenders of each."""
    failing = {k: v for k, v in problems.items() if v}
    message = ok_message if not failing else "; ".join(
        f"{k}: {len(v)} ({v[0]}{', ...' if len(v) > 1 else ''})" for k, v in failing.items())
    return GateResult(name=name, passed=not failing, message=message, figures=figures, settings=settings or {},
                      offenders_by_kind={k: v[: config.max_offenders] for k, v in failing.items()},
                      offender_counts={k: len(v) for k, v in failing.items()}, table=table or [])


def _short(h: Any) -> str:
    """A stored hash shortened to "sha256:" + 16 hex digits: enough to find it, short to read."""
    if h is None:
        return "<none>"
    return h[:23] if isinstance(h, str) and _HASH_PREFIX.match(h) else _label(h)


def _label(value: Any, allowed: Iterable[str] = ()) -> str:
    """A field value fit for a report: itself when it is one of the `allowed` names, else a short
    hash of it ("value sha256:1a2b3c4d"). Any other value may be record text (even PII)."""
    if isinstance(value, str) and value in allowed:
        return value
    if value is None:
        return "<none>"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "value " + contract.sha256_digest(text.encode("utf-8"))[:15]


def _number_label(value: Any) -> Any:
    """A manifest figure as stated: a number is shown, anything else as a hash."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else _label(value)


def _path_label(path: str) -> str:
    """A file path (from storage or the manifest) as shown: plain paths as they are."""
    return path if _PLAIN_PATH.match(path) else _label(path)


def _text_hash(text: str) -> str:
    return contract.sha256_digest(text.encode("utf-8"))


def _spread(keys: Iterable[tuple[str, str, str]]) -> dict[str, tuple[set[str], list[str]]]:
    """(key, split, record id) -> key -> (splits it appears in, ids)."""
    seen: dict[str, tuple[set[str], list[str]]] = defaultdict(lambda: (set(), []))
    for key, split, rid in keys:
        seen[key][0].add(split)
        seen[key][1].append(rid)
    return seen


def _near_duplicate_clusters(records: Sequence[dict[str, Any]], threshold: float) -> list[list[int]]:
    """Clusters (index lists, size >= 2) of near-duplicate records, by the dedup stage's own code."""
    from pixel_assets.lib.dedup import dedup_text, near_duplicate_clusters

    if not records:
        return []
    labels = near_duplicate_clusters([dedup_text(r) for r in records], threshold=threshold)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        groups[label].append(i)
    return [g for g in groups.values() if len(g) > 1]


def _family_holdouts(registry: Registry) -> dict[str, Any]:
    return {f.name: f.holdout for f in registry.families}


# --- the eight gates -------------------------------------------------------------------------


def gate_coverage(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    counts = Counter(r.family for r in ds.records)
    thresholds = CoverageThresholds(config.min_present, config.min_partial)
    table, missing, partial = [], [], []
    for name in registry.required:
        n = counts.get(name, 0)
        status = coverage_status(n, thresholds)
        table.append({"family": name, "conversations": n, "status": status})
        if status == "missing":
            missing.append(f"{name} ({n} conversations, need >= {config.min_partial})")
        elif status == "partial":
            partial.append(name)
    unknown = sorted(set(counts) - set(registry.names))
    figures = {"present": sum(r["status"] == "present" for r in table), "partial": len(partial),
               "missing": len(missing), "families_not_in_registry": len(unknown)}
    settings = {"required_families": len(registry.required), "min_present": config.min_present,
                "min_partial": config.min_partial}
    ok = f"all {len(registry.required)} required families compiled"
    if partial:
        ok += f" ({len(partial)} partial: {', '.join(partial)})"
    return _result("coverage", {"missing required families": missing,
                                "families not in the registry": [f"{_label(u, ['<none>'])} ({counts[u]} records)"
                                                                 for u in unknown]},
                   ok, config, figures, table, settings)


def gate_leakage(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    recs = ds.records
    by_hash = _spread((ds.recomputed_hash(r), r.split, r.id) for r in recs)
    by_turn = _spread((_text_hash(t), r.split, r.id) for r in recs
                      if (t := contract.first_user_turn(r.messages)) is not None)
    clusters = _near_duplicate_clusters([r.record for r in recs], config.near_dup_threshold)
    hash_leaks = [f"{_short(h)} in {'+'.join(sorted(s))} ({', '.join(ids[:3])})"
                  for h, (s, ids) in by_hash.items() if len(s) > 1]
    turn_leaks = [f"first-user-turn {_short(h)} in {'+'.join(sorted(s))} ({', '.join(ids[:3])})"
                  for h, (s, ids) in by_turn.items() if len(s) > 1]
    cluster_leaks = []
    for members in clusters:
        splits = {recs[i].split for i in members}
        if len(splits) > 1:
            ids = [recs[i].id for i in members]
            cluster_leaks.append(f"near-dup cluster of {len(members)} in {'+'.join(sorted(splits))} ({', '.join(ids[:3])})")
    figures = {"records": len(recs), "distinct_content_hashes": len(by_hash),
               "hashes_in_several_splits": len(hash_leaks),
               "near_duplicate_clusters": len(clusters), "clusters_in_several_splits": len(cluster_leaks),
               "distinct_first_user_turns": len(by_turn), "first_user_turns_in_several_splits": len(turn_leaks)}
    return _result("leakage", {"content hashes in several splits": hash_leaks,
                               "near-duplicate clusters in several splits": cluster_leaks,
                               "first user turns in several splits": turn_leaks},
                   "no content hash, near-duplicate cluster or first user turn spans two splits",
                   config, figures, settings={"near_dup_threshold": config.near_dup_threshold})


def gate_distribution(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    holdouts = _family_holdouts(registry)
    non_holdout = [r for r in ds.records if holdouts.get(r.family) is None or holdouts[r.family].mode == "none"]
    # A conversation whose group shares a question with a holdout family goes to test as a whole
    # (leakage-freedom wins); those are held out, not 90/5/5-assigned, so they are not counted.
    # Which ones is recomputed with the split stage's own assignment, not read from the records.
    recomputed = _recomputed_holdout(ds, registry, config)
    counted = [r for r in non_holdout if recomputed.get(r.id, "none") == "none"]
    per_split = Counter(r.split for r in counted)
    total = len(counted)
    # Named non_holdout_*: they count fewer records than the stats gate's <split>_conversations.
    figures: dict[str, Any] = {"non_holdout_conversations": total,
                               "held_out_with_a_holdout_group": len(non_holdout) - total}
    settings: dict[str, Any] = {"split_salt": config.split_salt}
    out_of_band = []
    for split in contract.SPLITS:
        lo, hi = config.share_bounds(split)
        share = per_split.get(split, 0) / total if total else 0.0
        figures[f"non_holdout_{split}_conversations"] = per_split.get(split, 0)
        figures[f"non_holdout_{split}_share"] = round(share, 4)
        settings[f"{split}_share_band"] = f"{lo:.2f}-{hi:.2f}"
        if not lo <= share <= hi:
            out_of_band.append(f"{split} share {share:.4f} outside {lo:.2f}-{hi:.2f}")
    problems = {"shares out of tolerance": out_of_band,
                "no non-holdout conversations": [] if total else ["0 conversations"]}
    result = _result("distribution", problems, "non-holdout shares " + ", ".join(
                         f"{s} {figures[f'non_holdout_{s}_share']:.3f}" for s in contract.SPLITS),
                     config, figures, settings=settings)
    if out_of_band:  # every offending share in the message: there are at most three
        result.message = f"shares out of tolerance over {total} non-holdout conversations: " + "; ".join(out_of_band)
    return result


def gate_pii(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    from pixel_assets.lib.pii.scrub import PIPELINE_METADATA
    from pixel_assets.lib.pii.structured import find_structured_pii

    review = [f"{r.id} {_short(r.stored_hash)}" for r in ds.records if r.meta.get("pii_status") == "requires_review"]
    # Every string a record carries that came from a source: all message values (whatever their
    # key or nesting; a valid role is not text), and metadata other than the fields the pipeline
    # writes itself (rejected_response, category, creator, ...: what the scrub stage scrubbed).
    texts, owners = [], []
    for i, r in enumerate(ds.records):
        messages = r.record.get("messages")
        for m in messages if isinstance(messages, list) else []:
            items = m.items() if isinstance(m, dict) else [("", m)]
            for key, value in items:
                if not (key == "role" and value in contract.ROLES):
                    for text in _strings(value):
                        texts.append(text)
                        owners.append(i)
        for key, value in r.meta.items():
            if key not in PIPELINE_METADATA:
                for text in _strings(value):
                    texts.append(text)
                    owners.append(i)
    found: dict[int, Counter] = defaultdict(Counter)
    by_type: Counter = Counter()
    for owner, detections in zip(owners, find_structured_pii(texts, min_score=config.pii_min_score)):
        for d in detections:
            found[owner][d.entity_type] += 1
            by_type[d.entity_type] += 1
    pii = [f"{ds.records[i].id} {_short(ds.records[i].stored_hash)}: "
           + ", ".join(f"{t} x{n}" for t, n in sorted(c.items())) for i, c in sorted(found.items())]
    figures = {"records_scanned": len(ds.records), "texts_scanned": len(texts),
               "requires_review_records": len(review), "records_with_structured_pii": len(found),
               **{f"found_{t}": n for t, n in sorted(by_type.items())}}
    return _result("pii", {"requires_review records in shards": review,
                           "records with structured PII": pii},
                   f"{len(ds.records)} records re-scanned: no requires_review, no structured PII",
                   config, figures, settings={"pii_min_score": config.pii_min_score})


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value (dict values, list items, nested)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not (value.strip() if isinstance(value, str) else value))


def _contract_violations(record: dict[str, Any]) -> list[str]:
    """Where a record breaks the record contract (SPEC §3), as schema paths and rule names only:
    a schema error message quotes the offending value, which may be record text."""
    if not contract.record_errors(record):  # the fast compiled check; nearly every record passes
        return []
    out = []
    for e in contract.record_schema_errors(record):
        path = "/".join(map(str, e.absolute_path))  # schema property names and list indices only
        if e.validator == "required" and isinstance(e.instance, dict):
            out += [f"{path + '/' if path else ''}{k} missing" for k in e.validator_value if k not in e.instance]
        else:
            out.append(f"{path or '<root>'} ({e.validator})")
    return list(dict.fromkeys(out)) or ["<root> (rejected by the compiled schema validator)"]


def _map_entry_disagreement(entry: Any, meta: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    """Fields of a provenance_map entry that are empty or differ from the record's own."""
    if not isinstance(entry, dict):
        return ["entry is not an object"]

    def text(value: Any) -> bool:
        return isinstance(value, str) and not _empty(value)

    wrong = [k for k in ("source_key", "source_family") if not text(entry.get(k)) or entry[k] != meta.get(k)]
    fmt = entry.get("original_format")
    if not text(fmt) or ("original_format" in meta and fmt != meta["original_format"]):
        wrong.append("original_format")
    steps = entry.get("processing_steps")
    if (not isinstance(steps, list) or not steps or not all(text(s) for s in steps)
            or (isinstance(prov.get("processing_steps"), list) and steps != prov["processing_steps"])):
        wrong.append("processing_steps")
    return wrong


def gate_provenance(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    pmap = ds.manifest.get("provenance_map")
    pmap = pmap if isinstance(pmap, dict) else {}
    missing_by_field: Counter = Counter()
    broken, incomplete, unmapped, disagreeing = [], [], [], []
    for r in ds.records:
        violations = _contract_violations(r.record)
        if violations:
            broken.append(f"{r.id} {_short(r.stored_hash)}: {', '.join(violations[:5])}"
                          + (f" (+{len(violations) - 5})" if len(violations) > 5 else ""))
        prov = r.meta.get("provenance")
        prov = prov if isinstance(prov, dict) else {}
        lacking = [f for f in contract.PROVENANCE_FIELDS if _empty(prov.get(f))]
        missing_by_field.update(lacking)
        if lacking:
            incomplete.append(f"{r.id} {_short(r.stored_hash)}: {', '.join(lacking)}")
        entry = pmap.get(r.stored_hash) if r.stored_hash else None
        if entry is None:
            unmapped.append(f"{r.id} {_short(r.stored_hash)}")
        elif wrong := _map_entry_disagreement(entry, r.meta, prov):
            disagreeing.append(f"{r.id} {_short(r.stored_hash)}: {', '.join(wrong)}")
    # An entry no record refers to is provenance for something that is not in the dataset.
    stray = sorted(set(pmap) - {r.stored_hash for r in ds.records})
    figures = {"records": len(ds.records), "records_breaking_the_contract": len(broken),
               "records_missing_a_field": len(incomplete),
               **{f"missing_{f}": missing_by_field.get(f, 0) for f in contract.PROVENANCE_FIELDS},
               "provenance_map_entries": len(pmap), "records_without_map_entry": len(unmapped),
               "map_entries_disagreeing_with_record": len(disagreeing), "map_entries_without_record": len(stray)}
    return _result("provenance", {"records that break the record contract": broken,
                                  "records with empty/missing provenance fields": incomplete,
                                  "records without a provenance_map entry": unmapped,
                                  "provenance_map entries that disagree with their record": disagreeing,
                                  "provenance_map entries without a record": [_short(k) for k in stray]},
                   f"all {len(ds.records)} records meet the record contract and carry full provenance and a "
                   "matching provenance_map entry", config, figures)


def gate_hash(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    mismatched = [f"{r.id} stored {_short(r.stored_hash)} recomputed {_short(ds.recomputed_hash(r))}"
                  for r in ds.records if r.stored_hash != ds.recomputed_hash(r)]
    entries = _manifest_shards(ds.manifest, ds.prefix)
    listed = _manifest_shard_paths(ds.manifest, ds.prefix)
    # Each shard exactly once, under the split its folder and name say, with that name as its id.
    times_listed = Counter(e.path for e in entries)
    duplicated = [f"{_path_label(p)} listed {n} times" for p, n in sorted(times_listed.items()) if n > 1]
    misplaced = []
    for e in entries:
        if e.split not in contract.SPLITS:
            misplaced.append(f"{_path_label(e.path)} listed under splits.{_label(e.split)}, which is not a split")
        elif _shard_path_split(e.path) != e.split:
            misplaced.append(f"{_path_label(e.path)} listed under splits.{e.split}, "
                             f"which holds only {e.split}/{e.split}_NNN.jsonl")
        elif e.entry.get("shard_id") != e.path.rsplit("/", 1)[-1].removesuffix(".jsonl"):
            misplaced.append(f"{_path_label(e.path)}: shard_id {_label(e.entry.get('shard_id'))} is not its file name")
    shard_problems, missing, unlisted = [], [], []
    for s in ds.shards:
        path = _path_label(s.path)
        if not s.exists:
            missing.append(f"{path} (in manifest, not on storage)")
            continue
        if s.path not in listed:
            unlisted.append(f"{path} ({s.line_count} lines, under {s.split}/ but not in the manifest)")
            continue
        entry = listed[s.path].entry
        if entry.get("sha256") != s.sha256:
            shard_problems.append(f"{path}: sha256 {_short(s.sha256)} != manifest {_short(entry.get('sha256'))}")
        if entry.get("conversation_count") != s.line_count:
            shard_problems.append(f"{path}: {s.line_count} lines != manifest conversation_count "
                                  f"{_number_label(entry.get('conversation_count'))}")
        if entry.get("size_bytes") != s.size_bytes:
            shard_problems.append(f"{path}: {s.size_bytes} bytes != manifest size_bytes {_number_label(entry.get('size_bytes'))}")
    export_problems = []
    export_entry = ds.manifest.get("compiled_export")
    if isinstance(export_entry, dict) and ds.export_sha256 and export_entry.get("sha256") != ds.export_sha256:
        export_problems.append(f"{COMPILED_EXPORT}: sha256 {_short(ds.export_sha256)} != manifest {_short(export_entry.get('sha256'))}")
    shard_hashes = Counter(ds.recomputed_hash(r) for r in ds.records)
    if ds.export_identical:
        pass
    elif ds.export_hashes is None:
        export_problems.append(f"{COMPILED_EXPORT} missing")
    elif ds.export_hashes != shard_hashes or ds.export_unreadable:
        diff = (ds.export_hashes - shard_hashes) + (shard_hashes - ds.export_hashes)
        export_problems.append(f"{COMPILED_EXPORT}: {sum(ds.export_hashes.values())} records, "
                               f"{sum(diff.values())} differ from the shards, {ds.export_unreadable} unreadable")
    figures = {"records": len(ds.records), "content_hash_mismatches": len(mismatched),
               "shards_on_storage": sum(s.exists for s in ds.shards), "shards_in_manifest": len(entries),
               "shard_mismatches": len(shard_problems), "unlisted_files": len(unlisted),
               "unreadable_lines": len(ds.unreadable)}
    return _result("hash", {"content hash mismatches": mismatched,
                            "shard sha256/count/size mismatches": shard_problems,
                            "manifest shards missing": missing,
                            "files in split folders not in the manifest": unlisted,
                            "shard paths listed more than once": duplicated,
                            "shards listed under the wrong split or id": misplaced,
                            "unreadable shard lines": ds.unreadable,
                            "compiled export differs": export_problems},
                   f"{len(ds.records)} content hashes and {len(listed)} shards match the manifest",
                   config, figures)


def _recomputed_holdout(ds: CompiledDataset, registry: Registry, config: GateConfig) -> dict[str, str]:
    """Record id -> holdout marker ("none"|"family"|"slice"|"group") recomputed by the split stage's
    own assignment (pixel_assets.lib.splits.assign_splits) over the records as written."""
    from pixel_assets.lib.splits import assign_splits

    cache_key = (id(registry), config.split_salt)
    if cache_key not in ds._holdouts:  # shared by the distribution and split gates
        known = [r for r in ds.records if r.family in registry.names and r.stored_hash]
        assigned: list[str] = []
        if known:
            frame = contract.records_to_frame(r.record for r in known)
            assigned = assign_splits(frame, registry, salt=config.split_salt).get_column("holdout").to_list()
        ds._holdouts[cache_key] = {r.id: h for r, h in zip(known, assigned)}
    return ds._holdouts[cache_key]


def _holdout_policy_differences(stated: Any, registry: Registry) -> list[str]:
    """The manifest's holdout_families against the registry: the same families held out, with the
    same mode and fraction. A manifest without the policy does not say what test holds, so it fails."""
    if not isinstance(stated, dict):
        return ["manifest has no holdout_families"]
    expected = registry.holdouts()  # the families whose mode is not "none"
    out = []
    for name in sorted(set(stated) | set(expected)):
        entry = stated.get(name)
        family = _label(name, registry.names)
        mode = registry[name].holdout.mode if name in registry.names else None
        stated_mode = entry.get("mode") if isinstance(entry, dict) else entry
        if mode is None:
            out.append(f"{family}: in the manifest, not in the registry")
        elif entry is None:  # absent: right only for a family the registry does not hold out
            if name in expected:
                out.append(f"{family}: not in the manifest, registry mode {mode}")
        elif stated_mode != mode:
            out.append(f"{family}: manifest mode {_label(stated_mode, HOLDOUT_MODES)} != registry {mode}")
        elif name in expected and entry.get("fraction") != expected[name].fraction:
            out.append(f"{family}: manifest fraction {_number_label(entry.get('fraction'))} "
                       f"!= registry {expected[name].fraction}")
    return out


def gate_split(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    holdouts = _family_holdouts(registry)
    wrong_field = [f"{r.id}: metadata.split={_label(r.meta.get('split'), contract.SPLITS)}"
                   for r in ds.records if r.meta.get("split") != r.split]
    test_only = [f"{r.id} {_short(r.stored_hash)} ({r.family})" for r in ds.records
                 if r.split != "test" and r.family in holdouts and holdouts[r.family].mode == "test_only"]
    # A record is held out when the stored marker says so or the recomputed assignment does: either
    # way it must sit in test.
    recomputed = _recomputed_holdout(ds, registry, config)
    held, slice_leaks = 0, []
    for r in ds.records:
        markers = {_label(r.meta.get("holdout") or "none", HOLDOUT_MARKERS), recomputed.get(r.id, "none")} - {"none"}
        if markers:
            held += 1
            if r.split != "test" and not (r.family in holdouts and holdouts[r.family].mode == "test_only"):
                slice_leaks.append(f"{r.id} {_short(r.stored_hash)} ({_label(r.family, registry.names)}, "
                                   f"held out as {'/'.join(sorted(markers))})")
    policy = _holdout_policy_differences(ds.manifest.get("holdout_families"), registry)
    per_family_split = Counter((r.family, r.split) for r in ds.records
                               if r.family in holdouts and holdouts[r.family].mode != "none")
    table = [{"family": n, "mode": holdouts[n].mode,
              **{s: per_family_split.get((n, s), 0) for s in contract.SPLITS}}
             for n in sorted(holdouts) if holdouts[n].mode != "none"]
    settings = {"test_only_families": sum(h.mode == "test_only" for h in holdouts.values()),
                "test_slice_families": sum(h.mode == "test_slice" for h in holdouts.values()),
                "split_salt": config.split_salt}
    figures = {"held_out_records": held,
               "test_only_records_outside_test": len(test_only),
               "held_out_records_outside_test": len(slice_leaks),
               "records_in_wrong_split_directory": len(wrong_field)}
    return _result("split", {"test-only family records outside test": test_only,
                             "holdout-slice records outside test": slice_leaks,
                             "records whose metadata.split differs from their shard's split": wrong_field,
                             "manifest holdout policy differs from the registry": policy},
                   "holdout families and slices appear only in test", config, figures, table, settings)


def _record_tokens(r: ShardRecord) -> int:
    # The manifest total is the sum of the records' own total_tokens (set at ingest, kept through
    # the PII stage); a record without one counts its recomputed estimate.
    n = r.meta.get("total_tokens")
    return n if isinstance(n, int) and not isinstance(n, bool) else contract.approx_tokens(r.messages)


def gate_stats(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    m = ds.manifest
    problems: list[str] = []

    def compare(label: str, stated: Any, actual: int) -> None:
        if stated is None:
            problems.append(f"{label}: missing (recomputed {actual})")
        elif stated != actual:
            problems.append(f"{label}: manifest {_number_label(stated)} != shards {actual}")

    def obj(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    compare("total_conversations", m.get("total_conversations"), len(ds.records))
    tokens = sum(_record_tokens(r) for r in ds.records)
    compare("total_tokens_approx", m.get("total_tokens_approx"), tokens)
    splits = obj(m.get("splits"))
    per_split = Counter(r.split for r in ds.records)
    # The shard lists must add up too: a trainer reads the shards the manifest lists, not the total.
    shard_counts: dict[str, list[Any]] = defaultdict(list)
    for e in _manifest_shards(m, ds.prefix):
        shard_counts[e.split].append(e.entry.get("conversation_count"))
    for split in contract.SPLITS:
        compare(f"splits.{split}.conversations", obj(splits.get(split)).get("conversations"), per_split.get(split, 0))
        counts = shard_counts.get(split, [])
        if all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            compare(f"splits.{split}.shards conversation_count sum", sum(counts), per_split.get(split, 0))
        else:
            problems.append(f"splits.{split}.shards conversation_count: not all integers")
    families = obj(m.get("source_families"))
    per_family = Counter(r.family for r in ds.records)
    per_family_split = Counter((r.family, r.split) for r in ds.records)
    for name in sorted(set(per_family) | set(families)):
        entry = obj(families.get(name))
        family = _label(name, [*registry.names, "<none>"])
        compare(f"source_families.{family}.conversations", entry.get("conversations"), per_family.get(name, 0))
        fsplits = obj(entry.get("splits"))
        for split in contract.SPLITS:
            compare(f"source_families.{family}.splits.{split}", fsplits.get(split), per_family_split.get((name, split), 0))
    # Each shard's source_families list is a statistic too.
    shard_families: dict[str, set[str]] = defaultdict(set)
    for r in ds.records:
        shard_families[r.path].add(r.family)
    for path, shard in sorted(_manifest_shard_paths(m, ds.prefix).items()):
        stated = shard.entry.get("source_families")
        stated = list(stated) if isinstance(stated, dict) else stated
        actual = shard_families.get(path, set())
        if not (isinstance(stated, list) and all(isinstance(f, str) for f in stated)):
            problems.append(f"shard {_path_label(path)} source_families: missing or not a list of names")
        elif set(stated) != actual:
            problems.append(f"shard {_path_label(path)} source_families: manifest {len(set(stated))} families "
                            f"!= shards {len(actual)}")
    figures = {"total_conversations": len(ds.records),
               "manifest_total_conversations": _number_label(m.get("total_conversations")),
               "total_tokens_approx": tokens, "manifest_total_tokens_approx": _number_label(m.get("total_tokens_approx")),
               **{f"{s}_conversations": per_split.get(s, 0) for s in contract.SPLITS},
               "families": len(per_family), "disagreements": len(problems)}
    return _result("stats", {"manifest statistics that disagree with the shards": problems},
                   "manifest totals, per-split, per-shard and per-family figures equal the shards", config, figures)


GATES: dict[str, Callable[[CompiledDataset, Registry, GateConfig], GateResult]] = {
    "coverage": gate_coverage, "leakage": gate_leakage, "distribution": gate_distribution,
    "pii": gate_pii, "provenance": gate_provenance, "hash": gate_hash, "split": gate_split,
    "stats": gate_stats,
}


def run_gates(ds: CompiledDataset, registry: Registry | None = None, config: GateConfig | None = None) -> list[GateResult]:
    """All eight gates; a gate that crashes fails with the exception type (no content in it)."""
    registry = registry or load_registry()
    config = config or GateConfig()
    results = []
    for name, gate in GATES.items():
        try:
            results.append(gate(ds, registry, config))
        except Exception as exc:  # a gate that cannot decide must not pass
            # The type only: an exception text can quote the record that caused it (polars does).
            results.append(GateResult(name=name, passed=False, message=(
                f"gate crashed: {type(exc).__name__} (details withheld, they may quote record text; "
                "a record that breaks the record contract is the usual cause: see the provenance gate)")))
    return results


def failed_report(root: DataRoot, manifest_key: str, reason: str, config: GateConfig | None = None) -> VerificationReport:
    """Every gate failed with one reason (no manifest / unreadable manifest)."""
    return VerificationReport(manifest_key=manifest_key, manifest_uri=root.uri(manifest_key),
                              manifest_sha256="", manifest_generated_at=None, verified_at=contract.utc_now_iso(),
                              gates=[GateResult(name=n, passed=False, message=reason) for n in GATE_NAMES],
                              config=asdict(config or GateConfig()))


def verify_compiled_dataset(root: DataRoot, prefix: str | None = None, *, registry: Registry | None = None,
                            config: GateConfig | None = None) -> VerificationReport:
    """Run the eight gates on the compiled dataset under `prefix` (default: found automatically).

    A missing or unreadable manifest yields a report in which every gate failed with the reason.
    """
    try:
        prefix = find_dataset_prefix(root) if prefix is None else prefix.strip("/")
        ds = load_compiled_dataset(root, prefix)
        fingerprint = _verified_fingerprint(root, ds)
    except VerificationError as exc:
        p = DEFAULT_PREFIX if prefix is None else prefix.strip("/")
        return failed_report(root, f"{p}/{MANIFEST_NAME}" if p else MANIFEST_NAME, str(exc), config)
    manifest_key = ds.key(MANIFEST_NAME)
    config = config or GateConfig()
    return VerificationReport(
        manifest_key=manifest_key, manifest_uri=root.uri(manifest_key), manifest_sha256=ds.manifest_sha256,
        manifest_generated_at=ds.manifest.get("generated_at"), verified_at=contract.utc_now_iso(),
        gates=run_gates(ds, registry, config), config=asdict(config), dataset_fingerprint=fingerprint,
    )


def _verified_fingerprint(root: DataRoot, ds: CompiledDataset) -> str:
    """The dataset fingerprint of exactly the bytes the gates read (compiled.dataset_fingerprint
    reads storage for the same value). Built from the digests taken while loading, so the shards
    are not read twice; should anything change meanwhile, storage no longer matches it, and report
    reuse and the training guard refuse to trust this verification."""
    from pixel_assets.lib.compiled.publish import fingerprint_of, published_files

    files: dict[str, str | None] = {ds.key(s.path): s.sha256 for s in ds.shards if s.exists}
    export_key = ds.key(COMPILED_EXPORT)
    for key in published_files(root, ds.prefix):
        if key not in files:  # the export, or a stray file in compiled/ that the gates do not read
            files[key] = ds.export_sha256 if key == export_key else contract.sha256_digest(root.read_bytes(key))
    return fingerprint_of(ds.key(MANIFEST_NAME), ds.manifest_sha256, files)


def report_key(manifest_key: str) -> str:
    return manifest_key.rsplit("/", 1)[0] + "/" + REPORT_NAME if "/" in manifest_key else REPORT_NAME


def write_report(root: DataRoot, report: VerificationReport) -> str:
    """Write the report next to the manifest; returns its key."""
    key = report_key(report.manifest_key)
    root.write_text(key, report.to_json())
    return key


def current_report(root: DataRoot, prefix: str = DEFAULT_PREFIX, *,
                   config: GateConfig | None = None) -> tuple[VerificationReport, bool]:
    """The written report when it verified the published bytes as they are now (same dataset
    fingerprint: manifest and every shard) with the same thresholds; otherwise a fresh
    verification, written. Returns (report, reused).

    The gate checks write their report as they run, so the report asset of the same run reuses it
    instead of running the gates a second time (hashing the files is far cheaper than the gates).
    """
    from pixel_assets.lib.compiled.publish import dataset_fingerprint

    config = config or GateConfig()
    manifest_key = f"{prefix.strip('/')}/{MANIFEST_NAME}" if prefix.strip("/") else MANIFEST_NAME
    key = report_key(manifest_key)
    if root.exists(key) and root.exists(manifest_key):
        try:
            written = VerificationReport.from_dict(json.loads(root.read_bytes(key)))
        except (ValueError, KeyError, TypeError):
            written = None  # unreadable or from an older layout: verify again
        if (written is not None and written.dataset_fingerprint
                and written.dataset_fingerprint == dataset_fingerprint(root, prefix)
                and written.config == asdict(config) and [g.name for g in written.gates] == list(GATE_NAMES)):
            return written, True
    report = verify_compiled_dataset(root, prefix, config=config)
    write_report(root, report)
    return report, False
