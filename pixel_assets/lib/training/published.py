"""Reading the published dataset (what verify-then-publish promoted under `final_dataset/`):
one split, or train and val, following the manifest. Its own module so that the stage-data
writers and the content guard can read the test split without importing the plan."""

from __future__ import annotations

import json
from typing import Any

from pixel_assets.lib.storage import DataRoot

PUBLISHED_PREFIX = "final_dataset"


def read_published_split(root: DataRoot, split: str, families: set[str] | None = None,
                         prefix: str = PUBLISHED_PREFIX) -> list[dict[str, Any]]:
    """The records of one split of the published dataset in shard order (optionally only some
    families), following its manifest (ManifestError when nothing is published). A shard's path is
    relative to the manifest's folder (data/<version>/... in the versioned layout)."""
    from pixel_assets.lib.compiled import read_manifest

    manifest = read_manifest(root, prefix, validate=False)
    records = []
    for shard in manifest["splits"][split]["shards"]:
        path = shard["path"]
        key = path if path.startswith(prefix + "/") else f"{prefix}/{path}"
        for line in root.read_text(key).splitlines():
            if line.strip():
                record = json.loads(line)
                if families is None or record["metadata"]["source_family"] in families:
                    records.append(record)
    return records


def read_published_records(root: DataRoot, prefix: str = PUBLISHED_PREFIX,
                           splits: tuple[str, ...] = ("train", "val")) -> dict[str, list[dict[str, Any]]]:
    """The records of the published dataset's splits, following its manifest."""
    return {split: read_published_split(root, split, prefix=prefix) for split in splits}
