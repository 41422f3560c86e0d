"""Thin adapters between the training assets and the Dagster-free training library
(pixel_assets.lib.training): one place that knows the library's call signatures.

Where the library has no function for something the assets need, a small one is written here and
says so (evaluation loss per record set, the forgetting rule's fallback, probe fallback).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pixel_assets.lib.training.curriculum import StageConfig


def plan(force_cpu: bool = False):
    from pixel_assets.lib.training.models import device_plan

    return device_plan(force_cpu=force_cpu)


@contextmanager
def wandb_run(wandb: dict | None, stage: StageConfig, dagster_run_id: str, cache: Path):
    """One W&B run per stage through dagster-wandb's resource SDK: named `<run id[:8]>-<stage>`,
    grouped by the Dagster run; the mode is the resource's (settings.wandb_resource_from_env)."""
    from pixel_assets.lib.training.tracking import wandb_run as lib_run

    config = {"stage": stage.name, "kind": stage.kind, "config_hash": stage.config_hash(),
              "learning_rate": stage.learning_rate, "max_length": stage.max_length, "epochs": stage.epochs}
    resource = wandb or {"mode": "offline"}  # dagster-wandb's resource (a real key) has no "mode": online
    with lib_run(stage.name, dagster_run_id, config, sdk=resource.get("sdk"), mode=resource.get("mode", "online"),
                 wandb_dir=cache / "wandb") as run:
        yield run


def train_stage(*, stage: StageConfig, base: str, parent_adapter: Path | None, data_dir: Path, out_dir: Path,
                force_cpu: bool, log: Callable[[str], Any], callbacks=(), wandb_run: Any = None):
    """Train one stage (SFT chain or preference) into out_dir; the library's result."""
    from pixel_assets.lib.training.models import load_tokenizer

    tokenizer = load_tokenizer(base)
    out_dir.mkdir(parents=True, exist_ok=True)
    if stage.kind == "preference":
        from pixel_assets.lib.training.align import train_preference
        from pixel_assets.lib.training.preference_config import PreferenceConfig

        return train_preference(base=base, stage7_adapter=parent_adapter, tokenizer=tokenizer, data_path=data_dir,
                                out_dir=out_dir, config=PreferenceConfig.from_stage(stage), plan=plan(force_cpu),
                                callbacks=list(callbacks), log=log, wandb_run=wandb_run)
    from pixel_assets.lib.training.sft import SFTStageConfig, train_sft_stage

    config = SFTStageConfig.from_stage(stage, device=plan(force_cpu))
    return train_sft_stage(base=base, parent_adapter=parent_adapter, tokenizer=tokenizer,
                           train_path=data_dir / "train.jsonl", val_path=data_dir / "val.jsonl", out_dir=out_dir,
                           config=config, callbacks=list(callbacks), log=log, wandb_run=wandb_run)


def train_and_keep(*, base: str, out_dir: Path, force_cpu: bool, callbacks=(), **kwargs):
    """(result, model, tokenizer): train the stage, then the model it trained, for evaluation and
    probes. One model in memory: the trainer's own (optimizer and trainer released), or, when the
    stage was already trained before a failure, the checkpoint loaded once."""
    from pixel_assets.lib.training.progress import KeepTrainedModel

    keep = KeepTrainedModel()
    result = train_stage(base=base, out_dir=out_dir, force_cpu=force_cpu, callbacks=[*callbacks, keep], **kwargs)
    model, keep.model = keep.model, None
    if model is None:
        model, tokenizer = load_trained(base, out_dir, force_cpu=force_cpu)
    else:
        from pixel_assets.lib.training.models import load_tokenizer

        model.eval()
        tokenizer = load_tokenizer(out_dir)
    return result, model, tokenizer


def release_memory() -> None:
    """After the caller dropped its model: free it now, before the next stage loads one (the CUDA
    cache too)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_reference(run: Any) -> str | None:
    from pixel_assets.lib.training.tracking import run_reference as ref

    return ref(run)


def result_dict(result: Any) -> dict[str, Any]:
    for method in ("as_metadata", "as_dict"):
        if hasattr(result, method):
            return dict(getattr(result, method)())
    return dict(vars(result))


def load_trained(base: str, adapter_dir: Path | None, force_cpu: bool = False):
    """(model, tokenizer): the base with the checkpoint's adapter (None = the bare base), for evaluation."""
    from pixel_assets.lib.training.models import load_base_model, load_tokenizer

    model = load_base_model(base, plan(force_cpu))
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    return model, load_tokenizer(adapter_dir or base)


def eval_loss(model, tokenizer, records: list[dict], max_length: int | None = None) -> float:
    """Mean token loss over a stage's validation lines (the library's evaluate_records: assistant
    tokens of conversations, every token of phase-A text blocks); NaN when no token has a loss."""
    from pixel_assets.lib.training.evaluation import evaluate_records

    lines = [r for r in records if "messages" in r or r.get("text")]
    loss = evaluate_records(model, tokenizer, lines, max_length=max_length)["loss"]
    return float("nan") if loss is None else loss


def probe_answers(model, tokenizer, seed: int, max_new_tokens: int | None = None) -> list[dict[str, Any]]:
    """The fixed probe set (config/probes.yaml) answered with seeded decoding, scrubbed by the PII
    scrubber before anything is shown; ``max_new_tokens`` shortens answers (demo, tests)."""
    import dataclasses

    from pixel_assets.lib.training.probes import answer_probes, load_probes

    probes = load_probes()
    if max_new_tokens:
        probes = dataclasses.replace(probes, sampling=dataclasses.replace(probes.sampling, max_new_tokens=max_new_tokens))
    return answer_probes(model, tokenizer, probes, seed=seed)
