"""PII scrubbing stage (between normalization and dedup): detection, typed placeholders, cache.

Heavy modules (spaCy, presidio) load lazily so that importing this package stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Detection": "pixel_assets.lib.pii.detection",
    "find_structured_pii": "pixel_assets.lib.pii.structured",
    "PiiConfig": "pixel_assets.lib.pii.config",
    "load_config": "pixel_assets.lib.pii.config",
    "PiiScrubber": "pixel_assets.lib.pii.scrubber",
    "PiiCache": "pixel_assets.lib.pii.cache",
    "PiiResult": "pixel_assets.lib.pii.scrub",
    "scrub_frame": "pixel_assets.lib.pii.scrub",
    "scrub_records": "pixel_assets.lib.pii.scrub",
    "scrub_path": "pixel_assets.lib.pii.paths",
    "path_names": "pixel_assets.lib.pii.paths",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
