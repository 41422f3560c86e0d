"""The compiled dataset (SPEC §5): build in memory, validate, publish to a DataRoot, read back.

    frame = splits.assign_splits(deduped_frame, registry)
    compiled = build_compiled_dataset(frame, registry, shard_max_bytes=50_000_000)
    publish_compiled_dataset(compiled, root)          # -> "final_dataset/manifest.json"
    manifest = read_manifest(root)
"""

from pixel_assets.lib.compiled.build import (
    DEFAULT_SHARD_MAX_BYTES,
    CompiledDataset,
    CompileError,
    Shard,
    build_compiled_dataset,
)
from pixel_assets.lib.compiled.manifest import (
    EXPORT_KEY,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    manifest_schema,
    validate_manifest,
)
from pixel_assets.lib.compiled.publish import (
    DEFAULT_PREFIX,
    ManifestError,
    dataset_fingerprint,
    publish_compiled_dataset,
    read_manifest,
)

__all__ = [
    "DEFAULT_PREFIX", "DEFAULT_SHARD_MAX_BYTES", "EXPORT_KEY", "MANIFEST_NAME", "MANIFEST_VERSION",
    "CompileError", "CompiledDataset", "ManifestError", "Shard", "build_compiled_dataset", "dataset_fingerprint",
    "manifest_schema", "publish_compiled_dataset", "read_manifest", "validate_manifest",
]
