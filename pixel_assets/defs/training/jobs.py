"""The training job and the launch path that re-trains only what is stale.

`train_model` selects the training assets only and carries the run tag `pixel/gpu=h100` (the
routing launcher sends it to the GPU backend; the coordinator runs one at a time). Nothing in the
nightly schedule or the source sensor selects these assets.

`train_stale_stages` (a sensor, off by default; turn it on, or "Test sensor" and launch from the UI)
asks the instance which stages are stale, finds the first one in chain order, and requests a
`train_model` run of that stage and everything after it: the fresh checkpoints before it are reused.
Dagster 1.13 has no stale filter on `AssetSelection`, so the selection is computed here from the
same stale status the UI shows.
"""


import dagster as dg

from pixel_assets.dagster_internals import stale_status
from pixel_assets.defs.training import settings as s
from pixel_assets.launchers.routing import GPU_COUNT_TAG
from pixel_assets.lib.training.curriculum import Curriculum

TRAIN_JOB = "train_model"
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]


# Built per curriculum (no module-level job: the defs folder loader would collect a second `train_model`).
def build_train_model_job(cur: Curriculum | None = None):  # an unresolved asset job (dg.define_asset_job)
    """`train_model`, tagged `pixel/gpus=N` when a stage of `cur` trains on N > 1 GPUs: the routing
    launcher then asks the GPU backend for a machine with N GPUs (the run's other stages use one)."""
    gpus = max((st.gpus_per_stage for st in s.chain(cur)), default=1) if cur else 1
    return dg.define_asset_job(
        TRAIN_JOB,
        selection=dg.AssetSelection.groups(s.GROUP),
        description="Train the curriculum: base model, stage data, the checkpoint chain, final model, final evaluation.",
        tags={**s.GPU_TAG, "pixel/kind": "training", **({GPU_COUNT_TAG: str(gpus)} if gpus > 1 else {})},
    )


def stale_training_selection(instance: dg.DagsterInstance, asset_graph, cur: Curriculum) -> list[dg.AssetKey]:
    """The stage data and checkpoints from the first stage (in chain order) that is not fresh on,
    plus final_evaluation; everything when the base model is not fresh; empty when all is fresh."""
    stages = s.chain(cur)
    ordered = [s.BASE_MODEL_KEY] + [k for st in stages for k in (s.stage_data_key(st.name), s.checkpoint_key(st.name))]
    status = stale_status(instance, asset_graph, ordered + [s.FINAL_EVALUATION_KEY])
    first = next((i for i, key in enumerate(ordered) if status[key] != "FRESH"), None)
    if first is None:
        return [s.FINAL_EVALUATION_KEY] if status[s.FINAL_EVALUATION_KEY] != "FRESH" else []
    if first > 0 and ordered[first].path[0] == "checkpoints":
        first -= 1  # the stage's data too: cheap, and its unchanged version keeps the checkpoint's inputs equal
    return ordered[max(first, 0):] + [s.FINAL_EVALUATION_KEY]


def build_train_stale_stages(cur: Curriculum, job=None) -> dg.SensorDefinition:
    @dg.sensor(
        name="train_stale_stages", job=job or build_train_model_job(cur), minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Re-train from the first stale stage on (fresh checkpoints before it are reused).",
    )
    def train_stale_stages(context: dg.SensorEvaluationContext):
        running = context.instance.get_run_records(dg.RunsFilter(job_name=TRAIN_JOB, statuses=UNFINISHED), limit=1)
        if running:
            return dg.SkipReason(f"training run {running[0].dagster_run.run_id[:8]} is still queued or running")
        keys = stale_training_selection(context.instance, context.repository_def.asset_graph, cur)
        if not keys:
            return dg.SkipReason("every stage is fresh: nothing to re-train")
        versions = [s.latest_data_version(context.instance, dep) for key in keys
                    for dep in sorted(context.repository_def.asset_graph.get(key).parent_keys)]
        first = keys[0].to_user_string()
        return dg.RunRequest(
            run_key=f"stale-{s.version_hash([k.to_user_string() for k in keys], versions)[:16]}",
            asset_selection=keys, tags={**s.GPU_TAG, "pixel/trigger": "stale", "pixel/first_stale": first},
        )

    return train_stale_stages
