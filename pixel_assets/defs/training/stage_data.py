"""`base_model` and the stage datasets `stage_data/<stage>`: the weighted, length-aware mixes each
stage trains on, written as `training/stages/<stage>/{train,val}.jsonl` under the data root.

Every asset here calls the training guard first: nothing is built from a dataset whose gates did
not pass on the bytes published now.
"""


import dataclasses
import json
from pathlib import Path
from typing import Any

import dagster as dg

from pixel_assets.defs.guard import require_passed_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.inputs import read_split, stage_families
from pixel_assets.lib.report import markdown_table
from pixel_assets.lib.storage import DataRoot
from pixel_assets.lib.training.curriculum import Curriculum, StageConfig


def work_dir(data_root: DataRootResource, training: s.TrainingSettings) -> Path:
    path = Path(training.work_dir or Path(data_root.local_path) / "cache" / "training")
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_location(root: DataRoot, cur: Curriculum, cache: Path) -> str:
    """What to load the base model and tokenizer from: the configured HF id (offline cache), or the
    local copy of the embedded tiny base built by `base_model`."""
    if cur.base_model:
        return cur.base_model
    return str(s.local_dir(root, s.BASE_DIR, cache))


def tokenizer_families(cur: Curriculum) -> list[str]:
    """The tiny base's tokenizer is trained on the train split of the families the first two stages
    read: a change in a later stage's families then does not rebuild the base (which would make the
    whole chain stale). Byte-level BPE encodes any text, so nothing is out of vocabulary."""
    families: list[str] = []
    for stage in cur.sft_chain()[:2]:
        families += [f for f in stage.families if f not in families]
    return families


def _texts(records: list[dict]) -> list[str]:
    return ["\n".join(m["content"] for m in r.get("messages", [])) or r.get("text", "") for r in records]


def build_base_model_asset(cur: Curriculum) -> dg.AssetsDefinition:
    from pixel_assets.lib.training.base_pretrain import BasePretrainConfig

    families = [] if cur.base_model else tokenizer_families(cur)
    pretrain = BasePretrainConfig.from_mapping(cur.base_pretrain)
    inputs = s.training_inputs_key(cur.sft_chain()[:2][-1].name)  # its version covers the first two stages' families

    @dg.asset(
        key=s.BASE_MODEL_KEY, group_name=s.GROUP, kinds={"pytorch"}, code_version=s.TRAINING_CODE_VERSION,
        deps=[] if cur.base_model else [inputs],
        description=("The base model: the configured Hugging Face id (configuration only, never downloaded here) "
                     if cur.base_model else
                     "The embedded tiny Mistral-architecture base and its byte-level BPE tokenizer, built from the "
                     f"published train split of {', '.join(families)} into models/base/ and pre-trained with all its "
                     f"parameters on that text ({pretrain.max_steps} steps; seeded, reproducible), as a production "
                     "base is pretrained before the LoRA chain."),
    )
    def base_model(context: dg.AssetExecutionContext, data_root: DataRootResource, training: s.TrainingSettings):
        root = data_root.root()
        require_passed_gates(context, root)
        if cur.base_model:
            return dg.MaterializeResult(
                data_version=dg.DataVersion(s.version_hash("hf", cur.base_model)),
                metadata={"base_model": cur.base_model, "source": "configuration (Hugging Face id, offline cache)",
                          "model_max_length": cur.model_max_length},
            )
        from pixel_assets.lib.training.base_pretrain import pretrain_base, pretrain_texts, sample_records
        from pixel_assets.lib.training.models import build_tiny_base, load_tokenizer

        records = read_split(root, "train", set(families))
        hashes = sorted(r["metadata"]["content_hash"] for r in records)
        out = work_dir(data_root, training) / "base_build"
        build_tiny_base(_texts(records), out, max_position_embeddings=cur.model_max_length)
        sample = sample_records(records, pretrain)
        result = pretrain_base(out, pretrain_texts(sample, load_tokenizer(out)), pretrain,
                               plan=adapters_plan(training.force_cpu), log=context.log.info)
        s.upload_dir(root, out, s.BASE_DIR)
        files = sorted(p.name for p in out.iterdir() if p.is_file())
        return dg.MaterializeResult(
            data_version=dg.DataVersion(s.version_hash("tiny", hashes, cur.model_max_length, s.TRAINING_CODE_VERSION,
                                                       pretrain.fingerprint())),
            metadata={"base_model": "embedded tiny Mistral (pixel-tiny-mistral)", "uri": root.uri(s.BASE_DIR + "/"),
                      "tokenizer_records": len(records), "tokenizer_families": ", ".join(families),
                      "files": ", ".join(files), "model_max_length": cur.model_max_length,
                      "pretrain_config": dg.MetadataValue.json(dataclasses.asdict(pretrain)),
                      **result.as_metadata()},
        )

    return base_model


def adapters_plan(force_cpu: bool):
    from pixel_assets.lib.training.models import device_plan

    return device_plan(force_cpu=force_cpu)


# --- stage data --------------------------------------------------------------------------------


FAMILY_NUMBERS = ("target_weight", "achieved_weight", "achieved_token_weight", "tokens", "overlength")


def stats_metadata(stats: dict[str, Any]) -> dict[str, Any]:
    """Tables (markdown) and numbers (plotted across runs) from the stage data's stats: per family
    target against achieved weight, records, tokens (real tokenizer + template), over-length counts."""
    meta: dict[str, Any] = {}
    families = stats.get("families") or {}
    rows = [{"family": f, **{k: v for k, v in vals.items() if isinstance(v, (int, float, str, bool))}}
            for f, vals in sorted(families.items())]
    if rows:
        keys = sorted({k for r in rows for k in r if k != "family"})
        columns = ["family"] + [k for k in FAMILY_NUMBERS if k in keys] + [k for k in keys if k not in FAMILY_NUMBERS]
        meta["mix"] = dg.MetadataValue.md(markdown_table(rows, columns))
    for f, vals in families.items():
        for k in FAMILY_NUMBERS:
            if isinstance(vals.get(k), (int, float)) and not isinstance(vals.get(k), bool):
                meta[f"{k}/{f}"] = vals[k]
    for k, v in stats.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            meta[k] = v
        elif isinstance(v, dict) and k != "families":
            meta.update({f"{k}/{kk}": vv for kk, vv in v.items() if isinstance(vv, (int, float)) and not isinstance(vv, bool)})
    return meta


def validation_note(stats: dict[str, Any]) -> str:
    """Where the stage's validation records come from, in words (metadata and the run's log)."""
    source, moved = stats.get("val_source"), stats.get("val_from_train", 0)
    if source == "none" or stats.get("val_records") == 0:
        return "no validation records (too few in its families): trained unevaluated, no eval loss"
    if moved:
        return (f"{moved} validation records taken out of its own train records (seeded; too few val records "
                "in its families); never a test record")
    return "the val split of its families"


def build_stage_data_asset(cur: Curriculum, stage: StageConfig) -> dg.AssetsDefinition:
    families = sorted(stage.families)

    @dg.asset(
        key=s.stage_data_key(stage.name), group_name=s.GROUP, kinds={"json"}, code_version=s.code_version(stage),
        deps=[s.BASE_MODEL_KEY, s.training_inputs_key(stage.name)],
        description=f"{stage.name} ({stage.kind}): {', '.join(f'{f} {w:g}' for f, w in stage.families.items())}; "
                    f"context {stage.max_length}; written to {s.stage_dir(stage.name)}/{{train,val}}.jsonl",
    )
    def _stage_data(context: dg.AssetExecutionContext, data_root: DataRootResource, training: s.TrainingSettings):
        root = data_root.root()
        require_passed_gates(context, root)
        from pixel_assets.lib.training import stage_data as lib
        from pixel_assets.lib.training.models import load_tokenizer

        train = read_split(root, "train", set(families))
        val = read_split(root, "val", set(families))
        tokenizer = load_tokenizer(base_location(root, cur, work_dir(data_root, training)))
        data = lib.build_stage_data(stage, train, val, tokenizer)
        base_version = s.latest_data_version(context.instance, s.BASE_MODEL_KEY)
        version = lib.stage_data_version(stage, lib.stage_input_hashes(stage, train, val), {"base_model": base_version})
        data.stats["data_version"] = version
        lib.write_stage_data(root, stage.name, data)
        folder = s.stage_dir(stage.name)
        context.log.info(f"{stage.name}: {len(data.train)} train / {len(data.val)} val examples -> {root.uri(folder)}")
        validation = validation_note(data.stats)
        if data.stats.get("val_source") != "val_split" or not data.val:
            context.log.warning(f"{stage.name}: {validation}")
        return dg.MaterializeResult(
            data_version=dg.DataVersion(version),
            metadata={
                "train_uri": dg.MetadataValue.url(root.uri(f"{folder}/train.jsonl")),
                "val_uri": dg.MetadataValue.url(root.uri(f"{folder}/val.jsonl")),
                "train_examples": len(data.train), "val_examples": len(data.val),
                "input_train_records": len(train), "input_val_records": len(val),
                "val_source": str(data.stats.get("val_source")), "val_from_train": data.stats.get("val_from_train", 0),
                "validation": validation,
                "config_hash": stage.config_hash(), "data_version": version,
                **stats_metadata(data.stats),
            },
        )

    return _stage_data


# --- preference data (phase C) -----------------------------------------------------------------


def build_preference_data_asset(cur: Curriculum, stage: StageConfig, parent: StageConfig) -> dg.AssetsDefinition:
    families = stage_families(stage)
    sampled = stage.rejected_source not in (None, "none")

    @dg.asset(
        key=s.stage_data_key(stage.name), group_name=s.GROUP, kinds={"json"}, code_version=s.code_version(stage),
        deps=[s.BASE_MODEL_KEY, s.checkpoint_key(parent.name), s.training_inputs_key(stage.name)],
        description=("Preference pairs: " + ", ".join(f"{k} {v:g}" for k, v in stage.source_weights.items())
                     + (f"; rejected responses sampled from {s.checkpoint_key(parent.name).to_user_string()}" if sampled else "")
                     + f"; written to {s.stage_dir(stage.name)}/ (pairs and KTO rows)"),
    )
    def _preference_data(context: dg.AssetExecutionContext, data_root: DataRootResource,
                         checkpoint_store: s.CheckpointStoreResource, training: s.TrainingSettings):
        root = data_root.root()
        require_passed_gates(context, root)
        from pixel_assets.defs.training import adapters
        from pixel_assets.lib.training.preference import build_preference_data, write_preference_data
        from pixel_assets.lib.training.preference_config import PreferenceConfig

        train = read_split(root, "train", set(families))
        val = read_split(root, "val", set(families))
        config = PreferenceConfig.from_stage(stage)
        from pixel_assets.lib.training.models import load_tokenizer

        cache = work_dir(data_root, training)
        tokenizer = load_tokenizer(base_location(root, cur, cache))
        sampler = None
        if sampled:
            from pixel_assets.lib.training.sampling import checkpoint_sampler

            name = s.checkpoint_dir_name(parent.name)
            adapter = checkpoint_store.store(root).pull(name, cache / "parents" / name)
            model, tokenizer = adapters.load_trained(base_location(root, cur, cache), adapter, training.force_cpu)
            sampler = checkpoint_sampler(model, tokenizer, config.sampling)
        data = build_preference_data(config, train, sampler, val, tokenizer=tokenizer)
        keys = write_preference_data(root, data, s.stage_dir(stage.name))
        hashes = sorted(r["metadata"]["content_hash"] for r in train) + ["val"] + sorted(
            r["metadata"]["content_hash"] for r in val)
        version = s.version_hash("preference", hashes, stage.config_hash(),
                                 s.latest_data_version(context.instance, s.checkpoint_key(parent.name)) if sampled else None)
        root.write_text(f"{s.stage_dir(stage.name)}/stats.json",
                        json.dumps({"data_version": version, **data.stats}, indent=1, default=str))
        train_stats = data.stats.get("train", {})
        rows = [{"source": src, **({"pairs": v} if not isinstance(v, dict) else v)}
                for src, v in (train_stats.get("sources") or train_stats.get("pairs_per_source") or {}).items()]
        return dg.MaterializeResult(
            data_version=dg.DataVersion(version),
            metadata={
                **{f"{name}_uri": dg.MetadataValue.url(root.uri(key)) for name, key in keys.items()},
                "train_pairs": len(data.train), "val_pairs": len(data.val), "kto_train_rows": len(data.kto_train),
                "config_hash": stage.config_hash(), "data_version": version,
                **({"sources": dg.MetadataValue.md(markdown_table(rows))} if rows else {}),
                **{k: v for k, v in stats_metadata(train_stats).items() if k != "mix"},
            },
        )

    return _preference_data


def stage_data_assets(cur: Curriculum) -> list[dg.AssetsDefinition]:
    assets, parent = [], None
    for stage in s.chain(cur):
        if stage.kind == "preference":
            assets.append(build_preference_data_asset(cur, stage, parent))
        else:
            assets.append(build_stage_data_asset(cur, stage))
        parent = stage
    return assets
