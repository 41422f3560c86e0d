"""pixel_assets: verified therapeutic-conversation dataset compilation and staged training."""

__version__ = "0.1.0"
PIPELINE_NAME = f"pixel_assets/{__version__}"
