"""What several defs folders share: the registry handle, asset keys, per-family tags.

Every defs folder reads these from here instead of from one another's asset modules, so a folder
can be read (and changed) without the others.
"""

import dagster as dg

from pixel_assets.lib.registry import Family, load_registry

REGISTRY = load_registry()

# Asset groups, named for a reviewer reading the graph from left to right: the sources as found, the
# data work per family (ingest, PII, dedup, splits), what is verified and published (the compiled
# dataset with its gate checks, accounting, the published dataset, what training reads of it), the
# reports, and training.
GROUP_SOURCES = "sources"
GROUP_DATA = "data"
GROUP_VERIFICATION = "verification"
GROUP_REPORTS = "reports"
GROUP_TRAINING = "training"

COMPILED_DATASET_KEY = dg.AssetKey("compiled_dataset")
PUBLISHED_DATASET_KEY = dg.AssetKey("published_dataset")
VERIFICATION_REPORT_KEY = dg.AssetKey("verification_report")
DATASET_ACCOUNTING_KEY = dg.AssetKey("dataset_accounting")
# Check metadata: the dataset bytes (staged or published) a gate verified.
FINGERPRINT_KEY = "dataset_fingerprint"
# compiled_dataset metadata: the staged version (staging/<version>/) the gates verify.
DATASET_VERSION_KEY = "dataset_version"


# Per-family keys: <kind>/<family>_<kind>. The prefix keeps the catalog's folders; the last part,
# the only part the lineage graph shows on a node, says both the family and what the asset is, and
# is unique across the whole graph (pixel_assets_tests/test_definitions.py checks that).
def family_key(kind: str, family: str) -> dg.AssetKey:
    return dg.AssetKey([kind, f"{family}_{kind}"])


def raw_key(family: str) -> dg.AssetKey:
    return family_key("raw", family)


def normalized_key(family: str) -> dg.AssetKey:
    return family_key("normalized", family)


def quarantine_key(family: str) -> dg.AssetKey:
    return family_key("quarantine", family)


def scrubbed_key(family: str) -> dg.AssetKey:
    return family_key("scrubbed", family)


def review_key(family: str) -> dg.AssetKey:
    return family_key("pii_review", family)


def family_tags(family: Family) -> dict[str, str]:
    """Tags on every per-family asset, so the UI can filter a family's whole lineage."""
    return {"family": family.name, "required": str(family.required).lower()}
