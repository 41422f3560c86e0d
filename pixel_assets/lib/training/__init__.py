"""Training: curriculum, stage data (mixing, packing), trainers, checkpoint store. Dagster-free;
the assets live in pixel_assets/defs/training/."""
