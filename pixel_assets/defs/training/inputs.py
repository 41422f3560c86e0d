"""The published dataset as the training graph reads it: one `family_splits/<family>` asset per
family, each with a data version of its own (a hash of the content hashes of its train and val
records).

Why a version per family: Dagster marks an asset stale when an upstream data version changes. If
every stage read `compiled_dataset` directly, any nightly re-compile (or a change in one family)
would mark the whole chain stale. With a version per family, a stage dataset is stale only when a
family it reads changed, and a re-compile that changes nothing leaves every stage fresh. These
assets are part of the data side (group `compiled`, materialized by the compile job right after
the gates pass); they only read the published files, they train nothing.
"""


import json
from collections import defaultdict
from typing import Any

import dagster as dg

from pixel_assets.defs.gates.guard import COMPILED_DATASET_KEY
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training.settings import family_split_key, version_hash
from pixel_assets.lib.compiled.publish import read_manifest
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.storage import DataRoot

DATASET_PREFIX = "final_dataset"
TRAINING_SPLITS = ("train", "val")  # what training reads; the test split is evaluation's only


def read_split(root: DataRoot, split: str, families: set[str] | None = None,
               prefix: str = DATASET_PREFIX) -> list[dict[str, Any]]:
    """The records of one split of the published dataset, in shard order (optionally only some
    families), read through the manifest."""
    manifest = read_manifest(root, prefix, validate=False)
    records = []
    for shard in manifest["splits"][split]["shards"]:
        for line in root.read_text(f"{prefix}/{shard['path']}").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if families is None or record["metadata"]["source_family"] in families:
                records.append(record)
    return records


def records_by_family(root: DataRoot, splits: tuple[str, ...]) -> dict[str, dict[str, list[dict]]]:
    """family -> split -> records."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: {s: [] for s in splits})
    for split in splits:
        for record in read_split(root, split):
            out[record["metadata"]["source_family"]][split].append(record)
    return out


def family_version(splits: dict[str, list[dict]]) -> str:
    """Hash of the (split, content_hash) pairs of a family's training records, order-free."""
    pairs = sorted((split, r["metadata"]["content_hash"]) for split, recs in splits.items() for r in recs)
    return version_hash("family", pairs)


def build_family_splits(registry: Registry, upstream: dg.AssetKey = COMPILED_DATASET_KEY) -> dg.AssetsDefinition:
    families = [f.name for f in registry.families if f.enabled]

    @dg.multi_asset(
        name="family_splits",
        specs=[
            dg.AssetSpec(family_split_key(f), deps=[upstream], group_name="compiled", kinds={"json"},
                         description=f"The published train and val records of {f} (what training reads), "
                                     "with a data version of their own so unrelated changes leave stages fresh.")
            for f in families
        ],
        description="Per-family view of the published dataset for training (content-hash data versions).",
    )
    def family_splits(context: dg.AssetExecutionContext, data_root: DataRootResource):
        by_family = records_by_family(data_root.root(), TRAINING_SPLITS)
        for family in families:
            splits = by_family.get(family, {s: [] for s in TRAINING_SPLITS})
            yield dg.MaterializeResult(
                asset_key=family_split_key(family),
                data_version=dg.DataVersion(family_version(splits)),
                metadata={f"{s}_records": len(splits[s]) for s in TRAINING_SPLITS},
            )

    return family_splits
