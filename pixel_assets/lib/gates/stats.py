"""Gate 8, stats: manifest statistics equal the figures recomputed from the shards."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.loading import ShardRecord, manifest_shard_paths, manifest_shards
from pixel_assets.lib.gates.redaction import value_label, number_label, path_label, gate_result


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
            problems.append(f"{label}: manifest {number_label(stated)} != shards {actual}")

    def obj(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    compare("total_conversations", m.get("total_conversations"), len(ds.records))
    tokens = sum(_record_tokens(r) for r in ds.records)
    compare("total_tokens_approx", m.get("total_tokens_approx"), tokens)
    splits = obj(m.get("splits"))
    per_split = Counter(r.split for r in ds.records)
    # The shard lists must add up too: a trainer reads the shards the manifest lists, not the total.
    shard_counts: dict[str, list[Any]] = defaultdict(list)
    for e in manifest_shards(m, ds.prefix, ds.data_dir):
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
        family = value_label(name, [*registry.names, "<none>"])
        compare(f"source_families.{family}.conversations", entry.get("conversations"), per_family.get(name, 0))
        fsplits = obj(entry.get("splits"))
        for split in contract.SPLITS:
            compare(f"source_families.{family}.splits.{split}", fsplits.get(split), per_family_split.get((name, split), 0))
    # Each shard's source_families list is a statistic too.
    shard_families: dict[str, set[str]] = defaultdict(set)
    for r in ds.records:
        shard_families[r.path].add(r.family)
    for path, shard in sorted(manifest_shard_paths(m, ds.prefix, ds.data_dir).items()):
        stated = shard.entry.get("source_families")
        stated = list(stated) if isinstance(stated, dict) else stated
        actual = shard_families.get(path, set())
        if not (isinstance(stated, list) and all(isinstance(f, str) for f in stated)):
            problems.append(f"shard {path_label(path)} source_families: missing or not a list of names")
        elif set(stated) != actual:
            problems.append(f"shard {path_label(path)} source_families: manifest {len(set(stated))} families "
                            f"!= shards {len(actual)}")
    figures = {"total_conversations": len(ds.records),
               "manifest_total_conversations": number_label(m.get("total_conversations")),
               "total_tokens_approx": tokens, "manifest_total_tokens_approx": number_label(m.get("total_tokens_approx")),
               **{f"{s}_conversations": per_split.get(s, 0) for s in contract.SPLITS},
               "families": len(per_family), "disagreements": len(problems)}
    return gate_result("stats", {"manifest statistics that disagree with the shards": problems},
                   "manifest totals, per-split, per-shard and per-family figures equal the shards", config, figures)
