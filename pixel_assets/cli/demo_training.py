"""The training half of `pixel demo`: the `train_model` job on the tiny model, CPU, with the
curriculum's `demo` profile (few steps, small caps), and one line per stage."""

from __future__ import annotations

import json
import os
import time

# What the demo sets unless the environment says otherwise (the UI hint repeats the profile so
# `dagster dev` loads the same curriculum, and so the same code versions).
DEMO_ENV = {
    "PIXEL_CURRICULUM_PROFILE": "demo",
    "PIXEL_EVAL_RECORDS_PER_FAMILY": "2",  # final_evaluation: test records per family and section
    "PIXEL_PROBE_MAX_NEW_TOKENS": "24",  # probe answers shown in each checkpoint's metadata
}


def demo_environment() -> None:
    for name, value in DEMO_ENV.items():
        os.environ.setdefault(name, value)
    _quiet_libraries()


def _quiet_libraries() -> None:
    """The demo's terminal shows the per-stage lines, not library progress bars and deprecation
    notices (transformers 5 warns on every trainer it builds); the Dagster log keeps the progress."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("WANDB_SILENT", "true")


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def run_training(definitions, instance, root) -> bool:
    """Run train_model in process; print one line per stage, then final_model and the evaluation."""
    from pixel_assets.defs.training import settings as s
    from pixel_assets.defs.training.evaluation import evaluation_summary
    from pixel_assets.defs.training.jobs import TRAIN_JOB

    cur = s.curriculum()
    job = definitions.resolve_job_def(TRAIN_JOB)
    print(f"\nrunning job {job.name}: base model, stage data, the checkpoint chain, final model and evaluation "
          f"(curriculum profile {cur.profile or 'default'}; tiny model on CPU) ...")
    started = time.monotonic()
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    mats = {e.asset_key: {k: getattr(v, "value", v) for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}
    print(f"\ntraining ({time.monotonic() - started:.0f} s; run id {result.run_id}):")
    for stage in s.chain(cur):
        key = s.checkpoint_key(stage.name)
        meta = mats.get(key)
        label = key.path[-1]
        if meta is None:
            print(f"  {label:30s} not trained")
            continue
        print(f"  {label:30s} {_fmt(meta.get('steps'))} steps  train loss {_fmt(meta.get('train_loss'))}  "
              f"eval loss {_fmt(meta.get('eval_loss'))}  -> {meta.get('uri')}")
    key = "training/evaluation/final_evaluation.json"
    if root.exists(key) and s.FINAL_EVALUATION_KEY in mats:
        print(f"\nfinal evaluation (test split, assistant-token loss; holdout = the hard holdout) at {root.uri(key)}:")
        print(evaluation_summary(json.loads(root.read_text(key))))
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    if failed:
        print(f"\nFAILED training steps: {', '.join(failed)}")
    return result.success
