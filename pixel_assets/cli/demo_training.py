"""The training half of `pixel demo`: the `train_model` job on the tiny model, CPU, with the
curriculum's `demo` profile (a pre-trained tiny base, a few LoRA steps per stage, small caps), then
the loss table: per stage its own validation loss before (the parent) and after, and the final
model's test loss against the untrained model's, with the targets."""

from __future__ import annotations

import json
import os

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


def _fmt(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else ("n/a" if value is None else str(value))


def stage_lines(cur, mats) -> list[str]:
    """One line per checkpoint: steps, train loss, its own validation loss before (parent) -> after."""
    from pixel_assets.defs.training import settings as s

    lines = [f"  {'checkpoint':40s} {'steps':>5s}  {'train':>6s}  own val loss: parent -> this stage"]
    for stage in s.chain(cur):
        key = s.checkpoint_key(stage.name)
        meta = mats.get(key)
        if meta is None:
            lines.append(f"  {s.asset_label(key):40s} not trained")
            continue
        before, after = meta.get("parent_eval_loss"), meta.get("eval_loss")
        verdict = ""
        if isinstance(before, float) and isinstance(after, float):
            verdict = "  lower" if after < before else "  NOT LOWER"
            if stage.kind != "sft":  # the target judges SFT stages only (evaluation.stage_improvements)
                verdict = f"  {verdict.strip().lower()} ({stage.kind} stage: not judged)"
        elif stage.kind != "preference":
            verdict = "  (no validation records: unevaluated)" if after is None else ""
        lines.append(f"  {s.asset_label(key):40s} {_fmt(meta.get('steps')):>5s}  {_fmt(meta.get('train_loss')):>6s}  "
                     f"{_fmt(before)} -> {_fmt(after)}{verdict}")
    return lines


def target_lines(report: dict) -> list[str]:
    """The learning targets as written in final_evaluation.json."""
    targets = report.get("targets") or {}
    final = targets.get("final_vs_untrained") or {}
    stages = targets.get("stages_on_own_validation") or {}
    lines = []
    if final.get("ratio") is not None:
        lines.append(f"  final_model mean test loss {final['final_mean_loss']:.3f} vs untrained "
                     f"{final['untrained_mean_loss']:.3f}: ratio {final['ratio']:.2f} (target <= "
                     f"{final['target_ratio_at_most']:g}) {'MET' if final['met'] else 'NOT MET'}")
    if stages:
        lines.append(f"  every SFT stage lowered its own validation loss below its parent's: "
                     f"{'MET' if stages.get('all_lowered') else 'NOT MET'} ({stages.get('evaluated')} stages evaluated)")
    return lines


def run_training(definitions, instance, root) -> bool:
    """Run train_model in process; print the stage table, the evaluation and the targets."""
    from pixel_assets.cli.demo_output import log_dir_for, run_job
    from pixel_assets.defs.training import settings as s
    from pixel_assets.defs.training.evaluation import evaluation_summary
    from pixel_assets.defs.training.jobs import TRAIN_JOB

    cur = s.curriculum()
    job = definitions.resolve_job_def(TRAIN_JOB)
    print(f"\nrunning job {job.name}: base model (pre-trained), stage data, the LoRA checkpoint chain, final model "
          f"and evaluation (curriculum profile {cur.profile or 'default'}; tiny model on CPU) ...")
    result = run_job(job, instance, log_dir_for(root))
    mats = {e.asset_key: {k: getattr(v, "value", v) for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}
    base = mats.get(s.BASE_MODEL_KEY) or {}
    if base.get("pretrain_steps"):
        print(f"\nbase_model: every parameter pre-trained for {base['pretrain_steps']} steps on "
              f"{base.get('pretrain_records')} train records, training loss {_fmt(base.get('pretrain_first_loss'))} -> "
              f"{_fmt(base.get('pretrain_last_loss'))} ({_fmt(base.get('pretrain_duration_s'), 0)} s)")
    print(f"\ntraining (run id {result.run_id}):")
    print("\n".join(stage_lines(cur, mats)))
    key = "training/evaluation/final_evaluation.json"
    if root.exists(key) and s.FINAL_EVALUATION_KEY in mats:
        report = json.loads(root.read_text(key))
        print(f"\nfinal evaluation (test split, assistant-token loss; holdout = the hard holdout) at {root.uri(key)}:")
        print(evaluation_summary(report))
        print("\nlearning targets:")
        print("\n".join(target_lines(report)))
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    if failed:
        print(f"\nFAILED training steps: {', '.join(failed)} (details: the log above, or the run in dagster dev)")
    return result.success
