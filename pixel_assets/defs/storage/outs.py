"""Asset outputs that carry a polars frame (stored as Parquet by the frame IO manager)."""

import dagster as dg
import polars as pl

# A typed output: Dagster's untyped check would compare the frame to a sentinel with `!=`,
# which polars evaluates element-wise and rejects.
FRAME_TYPE = dg.PythonObjectDagsterType(pl.DataFrame, name="PolarsDataFrame")


def frame_out(key: dg.AssetKey | str, *, group_name: str, description: str, tags: dict | None = None, kinds: set[str] | None = None) -> dg.AssetOut:
    return dg.AssetOut(
        key=key,
        dagster_type=FRAME_TYPE,
        group_name=group_name,
        description=description,
        tags=tags,
        kinds=kinds or {"polars"},
    )
