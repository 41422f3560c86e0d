"""Source loaders and normalization (SPEC §2-3): raw files -> normalized records + quarantine."""

from pixel_assets.lib.ingest.encoding import clean_text, html_to_text
from pixel_assets.lib.ingest.formats import IngestConfigError
from pixel_assets.lib.ingest.loaders import (
    DEFAULT_MAX_RECORD_BYTES,
    IngestResult,
    ingest_family,
    load_source_bytes,
    resolve_source,
)

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES", "IngestConfigError", "IngestResult", "clean_text", "html_to_text",
    "ingest_family", "load_source_bytes", "resolve_source",
]
