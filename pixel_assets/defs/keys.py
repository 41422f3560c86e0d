"""What several defs folders share: the registry handle, asset keys, per-family tags.

Every defs folder reads these from here instead of from one another's asset modules, so a folder
can be read (and changed) without the others.
"""

import dagster as dg

from pixel_assets.lib.registry import Family, load_registry

REGISTRY = load_registry()

COMPILED_DATASET_KEY = dg.AssetKey("compiled_dataset")
PUBLISHED_DATASET_KEY = dg.AssetKey("published_dataset")
VERIFICATION_REPORT_KEY = dg.AssetKey("verification_report")
DATASET_ACCOUNTING_KEY = dg.AssetKey("dataset_accounting")
# Check metadata: the dataset bytes (staged or published) a gate verified.
FINGERPRINT_KEY = "dataset_fingerprint"
# compiled_dataset metadata: the staged version (staging/<version>/) the gates verify.
DATASET_VERSION_KEY = "dataset_version"


def raw_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", family])


def normalized_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["normalized", family])


def quarantine_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["quarantine", family])


def scrubbed_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["scrubbed", family])


def review_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["pii_review", family])


def family_tags(family: Family) -> dict[str, str]:
    """Tags on every per-family asset, so the UI can filter a family's whole lineage."""
    return {"family": family.name, "required": str(family.required).lower()}
