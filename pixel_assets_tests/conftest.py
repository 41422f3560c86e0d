"""Shared test setup: everything offline, no real AWS credentials, no stray Dagster home."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "PIXEL_S3_BUCKET", "PIXEL_S3_PREFIX", "PIXEL_S3_ENDPOINT_URL", "PIXEL_DATA_ROOT", "DAGSTER_HOME"):
    os.environ.pop(_var, None)
