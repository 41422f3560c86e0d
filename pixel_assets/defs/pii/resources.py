"""The PII resource: one scrubber per process (spaCy loads once) and the hash-keyed result cache."""

import dagster as dg
from pydantic import PrivateAttr

from pixel_assets.defs.storage.resources import DataRootResource


class PiiResource(dg.ConfigurableResource):
    """The project's scrubber (presidio + spaCy, loaded once per process) and its hash-keyed cache."""

    config_path: str | None = None  # default: the packaged pixel_assets/config/pii.yaml
    use_cache: bool = True
    _scrubber = PrivateAttr(default=None)

    def scrubber(self):
        if self._scrubber is None:
            from pixel_assets.lib.pii import PiiScrubber

            self._scrubber = PiiScrubber(self.config_path)
        return self._scrubber

    def cache(self, data_root: DataRootResource):
        if not self.use_cache:
            return None
        from pixel_assets.lib.pii import PiiCache

        return PiiCache(data_root.local_cache_dir() / "pii_cache.sqlite")


@dg.definitions
def pii_resources() -> dg.Definitions:
    return dg.Definitions(resources={"pii": PiiResource()})
