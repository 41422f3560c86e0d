"""Keep the PII stack offline: tldextract must use its bundled public-suffix snapshot."""

from __future__ import annotations

import os

_done = False


def configure_offline() -> None:
    """Make tldextract (used by presidio's email/URL validation) never touch the network.

    tldextract's module-level extractor reads TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS when it is
    constructed (at import), so set the variable first and also clear the URLs of an extractor
    that was imported before us. No cache dir either: the bundled snapshot is the only source.
    """
    global _done
    if _done:
        return
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import tldextract.tldextract as tld

    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
    _done = True
