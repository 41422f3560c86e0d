"""`pixel curriculum [--json] [--base-config config.json]`: the training plan of the curriculum
(lib/training/plan.py), with the memory plan per stage (lib/training/memory.py) for a base config."""

from __future__ import annotations

import argparse
import json
import sys

BASE_MODEL_KEY = "models/base"  # the embedded tiny base under the data root (asset `base_model`)


def register(commands, bench) -> None:
    parser = commands.add_parser(
        "curriculum",
        help="print the training plan: per stage families, weights, data available, steps, H100 hours",
        description="Validates the curriculum (pixel_assets/config/curriculum.yaml, or $PIXEL_CURRICULUM) and "
        "prints per stage: its families with target weights, the train conversations and tokens available in "
        "the published dataset under the data root (if one is published), epochs, learning rate, context, the "
        "optimizer steps it will take and an estimate of H100 hours at the curriculum's stated tokens/s (the "
        "figure's source printed beside it). Tokens are counted with the base model's tokenizer and chat "
        "template when one is found (--tokenizer, or models/base/ under a local data root), else taken from "
        "the records' metadata (approximate).",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.add_argument("--file", help="curriculum YAML (default $PIXEL_CURRICULUM or the packaged file)")
    parser.add_argument("--profile", help="curriculum profile, e.g. demo or production (default $PIXEL_CURRICULUM_PROFILE)")
    parser.add_argument("--root", help="data root: local path or s3://bucket/prefix (default: the pipeline's, "
                        "$PIXEL_DATA_ROOT / $PIXEL_S3_BUCKET, else .pixel)")
    parser.add_argument("--tokenizer", help="tokenizer directory (default: models/base/ under a local data root)")
    parser.add_argument("--registry", help="family registry YAML (default: the packaged one or $PIXEL_REGISTRY)")
    parser.add_argument("--base-config", help="the base model's config.json: adds each stage's planned peak GPU "
                        "memory on one H100 (lib/training/memory.py); a stage that cannot fit is an error")
    parser.set_defaults(handler=run_curriculum)


def _root(location: str | None):
    from pixel_assets.lib.storage import open_root

    if location is None:
        from pixel_assets.defs.storage.resources import data_root_from_env

        return data_root_from_env().root()
    return open_root(location)


def run_curriculum(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pixel_assets.lib.compiled import ManifestError
    from pixel_assets.lib.registry import load_registry
    from pixel_assets.lib.storage import LocalDataRoot
    from pixel_assets.lib.training.curriculum import load_curriculum
    from pixel_assets.lib.training.plan import PUBLISHED_PREFIX, curriculum_plan, read_published_records

    curriculum = load_curriculum(args.file, load_registry(args.registry), args.profile)
    root = _root(args.root)
    manifest_key = f"{PUBLISHED_PREFIX}/manifest.json"
    records, dataset = None, None
    try:
        records = read_published_records(root)
        dataset = root.uri(manifest_key)
    except ManifestError:
        dataset = None
    tokenizer, tokenizer_name = None, None
    tok_dir = Path(args.tokenizer) if args.tokenizer else (
        root.local_path(BASE_MODEL_KEY) if isinstance(root, LocalDataRoot) else None)
    if records is not None and tok_dir is not None and (tok_dir / "tokenizer_config.json").is_file():
        from pixel_assets.lib.training.models import load_tokenizer

        tokenizer, tokenizer_name = load_tokenizer(tok_dir), str(tok_dir)
    plan = curriculum_plan(curriculum, records, tokenizer, dataset=dataset, tokenizer_name=tokenizer_name)
    if args.base_config:
        from pixel_assets.lib.training.memory import MemoryPlanError, check_memory_plan, memory_plan

        memory = memory_plan(args.base_config, curriculum.stages)
        for row in plan["stages"]:
            if row["stage"] in memory:
                row["memory"] = memory[row["stage"]]
        plan["memory_base_config"] = str(args.base_config)
        try:
            check_memory_plan(memory, str(args.base_config))
        except MemoryPlanError as exc:
            print(f"pixel curriculum: {exc}", file=sys.stderr)
            return 2
    if not dataset:
        plan["dataset_note"] = f"no published dataset at {root.uri(manifest_key)}: data figures left out"
    if args.json:
        print(json.dumps(plan))
    else:
        print_plan(plan)
    return 0


def _fmt_int(n) -> str:
    return "-" if n is None else f"{n:,}"


def print_plan(plan: dict) -> None:
    base = plan["base_model"] or "embedded tiny model (models/base/ under the data root)"
    print(f"curriculum {plan['curriculum']}" + (f" (profile {plan['profile']})" if plan["profile"] else ""))
    print(f"base model: {base}; contexts up to {plan['model_max_length']:,} tokens; checkpoints: "
          f"{plan['checkpoint_store'] or '<data root>/checkpoints/<stage>/'}")
    print(f"dataset: {plan['dataset'] or plan.get('dataset_note')}")
    if plan["token_count"]:
        print(f"tokens counted with: {plan['token_count']}")
    print(f"H100 estimate at {plan['tokens_per_second_h100']:,.0f} tokens/s — source: {plan['tokens_per_second_source']}")
    for row in plan["stages"]:
        state = "" if row["enabled"] else "  (disabled)"
        print(f"\n{row['stage']} [{row['kind']}] from {row['from'] or 'the base model'}{state}")
        extra = f", {row['algorithm']} beta {row['beta']}" if row["kind"] == "preference" else ""
        extra += ", packing (BFD, whole sessions)" if row["packing"] else ""
        print(f"  epochs {row['epochs']}, lr {row['learning_rate']:g}, context {row['max_length']:,}, "
              f"batch {row['effective_batch_size']}" + (f", max_steps {row['max_steps']}" if row["max_steps"] else "") + extra)
        available = row.get("available", {})
        achieved = row.get("achieved_weights", {})
        for fam, weight in row["families"].items():
            a = available.get(fam)
            have = f"{_fmt_int(a['conversations'])} conv, {_fmt_int(a['tokens'])} tokens available" if a else ""
            got = f"; achieved {achieved[fam]:.3f}" if fam in achieved else ""
            print(f"    {fam:32s} target {weight:.3f}{got}  {have}")
        if "memory" in row:
            m = row["memory"]
            print(f"  memory (one H100): peak {m['peak_gib']:.1f} GiB = weights {m['weights_gib']:.1f} + LoRA state "
                  f"{m['lora_weights_gib'] + m['lora_grads_gib'] + m['optimizer_states_gib']:.2f} + max(activations "
                  f"{m['activations_gib']:.1f} + scoring tile {m['scoring_tile_gib']:.1f}, evaluation "
                  f"{m['evaluation_gib']:.1f}) + overhead {m['overhead_gib']:.1f}; fits: {m['fits_h100']}")
            if "per_gpu_peak_gib" in m:
                for strategy, peaks in m["per_gpu_peak_gib"].items():
                    fewest = m["smallest_gpus"][strategy]
                    print(f"  per GPU under {strategy}: " + ", ".join(f"{n} GPU {v:.1f}" for n, v in peaks.items())
                          + f" GiB; fewest H100s: {fewest if fewest else 'none of 1/2/4/8'}")
        if "steps" in row:
            print(f"  mix: {_fmt_int(row['train_records'])} train records, {_fmt_int(row['train_tokens'])} tokens, "
                  f"{_fmt_int(row['examples'])} examples -> {_fmt_int(row['steps'])} steps, "
                  f"~{row['h100_hours']:.3f} H100 h" + (f"; {row['overlength']} over-length" if row.get("overlength") else ""))
    if plan["total_steps"] is not None:
        print(f"\ntotal: {plan['total_steps']:,} steps, ~{plan['total_h100_hours']:.3f} H100 hours "
              f"(at {plan['tokens_per_second_h100']:,.0f} tokens/s, see source above)")
