"""Gate 6, hash: content hashes recompute, shard sha256/count/size equal the manifest."""

from __future__ import annotations

from collections import Counter

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import COMPILED_EXPORT
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.loading import manifest_shard_paths, manifest_shards, shard_path_split
from pixel_assets.lib.gates.redaction import value_label, number_label, path_label, gate_result, short_hash


def gate_hash(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    mismatched = [f"{r.id} stored {short_hash(r.stored_hash)} recomputed {short_hash(ds.recomputed_hash(r))}"
                  for r in ds.records if r.stored_hash != ds.recomputed_hash(r)]
    entries = manifest_shards(ds.manifest, ds.prefix, ds.data_dir)
    listed = manifest_shard_paths(ds.manifest, ds.prefix, ds.data_dir)
    # Each shard exactly once, under the split its folder and name say, with that name as its id.
    times_listed = Counter(e.path for e in entries)
    duplicated = [f"{path_label(p)} listed {n} times" for p, n in sorted(times_listed.items()) if n > 1]
    misplaced = []
    for e in entries:
        if e.split not in contract.SPLITS:
            misplaced.append(f"{path_label(e.path)} listed under splits.{value_label(e.split)}, which is not a split")
        elif shard_path_split(e.path) != e.split:
            misplaced.append(f"{path_label(e.path)} listed under splits.{e.split}, "
                             f"which holds only {e.split}/{e.split}_NNN.jsonl")
        elif e.entry.get("shard_id") != e.path.rsplit("/", 1)[-1].removesuffix(".jsonl"):
            misplaced.append(f"{path_label(e.path)}: shard_id {value_label(e.entry.get('shard_id'))} is not its file name")
    shard_problems, missing, unlisted = [], [], []
    for s in ds.shards:
        path = path_label(s.path)
        if not s.exists:
            missing.append(f"{path} (in manifest, not on storage)")
            continue
        if s.path not in listed:
            unlisted.append(f"{path} ({s.line_count} lines, under {s.split}/ but not in the manifest)")
            continue
        entry = listed[s.path].entry
        if entry.get("sha256") != s.sha256:
            shard_problems.append(f"{path}: sha256 {short_hash(s.sha256)} != manifest {short_hash(entry.get('sha256'))}")
        if entry.get("conversation_count") != s.line_count:
            shard_problems.append(f"{path}: {s.line_count} lines != manifest conversation_count "
                                  f"{number_label(entry.get('conversation_count'))}")
        if entry.get("size_bytes") != s.size_bytes:
            shard_problems.append(f"{path}: {s.size_bytes} bytes != manifest size_bytes {number_label(entry.get('size_bytes'))}")
    export_problems = []
    export_entry = ds.manifest.get("compiled_export")
    if isinstance(export_entry, dict) and ds.export_sha256 and export_entry.get("sha256") != ds.export_sha256:
        export_problems.append(f"{COMPILED_EXPORT}: sha256 {short_hash(ds.export_sha256)} != manifest {short_hash(export_entry.get('sha256'))}")
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
    return gate_result("hash", {"content hash mismatches": mismatched,
                            "shard sha256/count/size mismatches": shard_problems,
                            "manifest shards missing": missing,
                            "files in split folders not in the manifest": unlisted,
                            "shard paths listed more than once": duplicated,
                            "shards listed under the wrong split or id": misplaced,
                            "unreadable shard lines": ds.unreadable,
                            "compiled export differs": export_problems},
                   f"{len(ds.records)} content hashes and {len(listed)} shards match the manifest",
                   config, figures)
