"""The training graph (SPEC §7), built from the curriculum when the definitions load (an invalid
curriculum fails the load with an error naming the stage and the field):

  compiled_dataset -> training_inputs/<stage> (versions of what each stage reads) -> base_model
    -> stage_data/<stage> -> checkpoints/pretrained -> checkpoints/stage1_foundation -> ... -> checkpoints/stage7_roleplay
    -> stage_data/preference -> checkpoints/final_model -> final_evaluation
"""

import dagster as dg

from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.checkpoints import checkpoint_assets
from pixel_assets.defs.training.evaluation import build_final_evaluation
from pixel_assets.defs.training.inputs import build_training_inputs
from pixel_assets.defs.training.jobs import build_train_model_job, build_train_stale_stages
from pixel_assets.defs.training.pipes import PIPES_RESOURCE, training_pipes_from_env
from pixel_assets.defs.training.stage_data import build_base_model_asset, stage_data_assets


def build_training_defs(cur=None) -> dg.Definitions:
    cur = cur or s.curriculum()
    train_model_job = build_train_model_job(cur)
    return dg.Definitions(
        assets=[build_training_inputs(cur), build_base_model_asset(cur), *stage_data_assets(cur),
                *checkpoint_assets(cur), build_final_evaluation(cur)],
        jobs=[train_model_job],
        sensors=[build_train_stale_stages(cur, train_model_job)],
        resources={"checkpoint_store": s.checkpoint_store_from_env(cur=cur), "training": s.training_settings_from_env(),
                   "wandb": s.wandb_resource_from_env(), PIPES_RESOURCE: training_pipes_from_env()},
    )


@dg.definitions
def training_defs() -> dg.Definitions:
    return build_training_defs()
