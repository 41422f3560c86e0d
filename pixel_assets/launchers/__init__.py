"""Run launchers for the production instance (Dagster layer, configured from docker/dagster.yaml)."""

from pixel_assets.launchers.routing import BACKEND_TAG, GPU_TAG_KEY, GPU_TAG_VALUE, RoutingRunLauncher

__all__ = ["BACKEND_TAG", "GPU_TAG_KEY", "GPU_TAG_VALUE", "RoutingRunLauncher"]
