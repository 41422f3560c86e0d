"""The training curriculum (SPEC §7): one YAML file, validated on load.

Every error is a `CurriculumError` whose message names the stage and the field. Checked: unknown
keys, a family the registry does not know, weights that do not sum to 1, a test-only family (the
registry's holdout policy) or any split other than train, a missing or non-positive
hyperparameter, a context longer than the model allows, a `from` that is not the previous enabled
stage, and each preference algorithm's own settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pixel_assets.lib.registry import Registry, load_registry

DEFAULT_CURRICULUM = "curriculum.yaml"  # in pixel_assets/config/
CURRICULUM_ENV = "PIXEL_CURRICULUM"
PROFILE_ENV = "PIXEL_CURRICULUM_PROFILE"
KINDS = ("pretrain", "sft", "preference")
LONG_CONVERSATIONS = ("drop", "split")
MIX_UNITS = ("records", "tokens")
WEIGHT_TOLERANCE = 1e-6  # |sum(weights) - 1|
# Each preference algorithm's own settings: allowed keys and their defaults.
ALGORITHMS: dict[str, dict[str, Any]] = {
    "orpo": {},
    "simpo": {"gamma_beta_ratio": 0.5, "cpo_alpha": 0.0},
    "dpo": {"loss_type": "sigmoid", "label_smoothing": 0.0},
    "kto": {"desirable_weight": 1.0, "undesirable_weight": 1.0},
}
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero", "apo_down")
REJECTED_SOURCES = ("stage7_roleplay", "none")
SAMPLING_DEFAULTS = {"temperature": 0.9, "top_p": 0.95, "max_new_tokens": 256, "seed": 0}
STRATEGIES = ("ddp", "fsdp")  # data parallel (every GPU holds the model) or fully sharded (FSDP)
# Settings that change where a stage trains, not what it trains: left out of config_hash, so moving
# a stage to more GPUs (same global batch) does not make its checkpoint stale.
PLACEMENT_FIELDS = ("gpus_per_stage", "strategy")
# Positive hyperparameters every stage must have (after defaults are applied).
POSITIVE_INTS = ("epochs", "max_length", "per_device_batch_size", "gradient_accumulation_steps",
                 "eval_steps", "save_steps", "early_stopping_patience")
OPTIONAL_POSITIVE_INTS = ("max_steps", "max_train_records", "max_val_records")


class CurriculumError(ValueError):
    """The curriculum is invalid; the message names the stage and the field."""


@dataclass(frozen=True)
class StageConfig:
    name: str
    kind: str
    families: dict[str, float]
    learning_rate: float
    max_length: int
    enabled: bool = True
    from_stage: str | None = None
    splits: tuple[str, ...] = ("train",)
    epochs: int = 1
    per_device_batch_size: int = 4
    gradient_accumulation_steps: int = 4
    max_steps: int | None = None
    eval_steps: int = 200
    save_steps: int = 200
    early_stopping_patience: int = 3
    oversample: bool = False
    long_conversations: str = "drop"
    packing: bool = False
    mix_unit: str = "records"
    max_train_records: int | None = None
    max_val_records: int | None = None
    seed: int = 42
    # GPUs one run of this stage trains on (torchrun, one process per GPU) and how the model is spread
    # over them; the global batch (per_device_batch_size x gradient_accumulation_steps) stays as stated.
    gpus_per_stage: int = 1
    strategy: str = "ddp"
    # phase C only
    algorithm: str | None = None
    beta: float | None = None
    algorithm_settings: dict[str, Any] = field(default_factory=dict)
    source_weights: dict[str, float] = field(default_factory=dict)
    source_families: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rejected_source: str | None = None
    num_samples: int | None = None
    sampling: dict[str, Any] = field(default_factory=dict)

    def config_hash(self) -> str:
        """sha256 of every setting that changes what this stage builds or trains (all fields; `enabled`
        only decides whether it runs)."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k != "enabled" and k not in PLACEMENT_FIELDS}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=list)
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def effective_batch_size(self) -> int:
        return self.per_device_batch_size * self.gradient_accumulation_steps

    def steps_for(self, examples: int) -> int:
        """Optimizer steps for `examples` training examples (packed sequences for a packing stage),
        as HF Trainer counts them on one device: ceil(ceil(n / batch) / accumulation) per epoch."""
        per_epoch = math.ceil(math.ceil(examples / self.per_device_batch_size) / self.gradient_accumulation_steps)
        steps = per_epoch * self.epochs
        return min(steps, self.max_steps) if self.max_steps else steps

    def accumulation_per_gpu(self, world_size: int | None = None) -> int:
        """Gradient accumulation each of `world_size` (default gpus_per_stage) processes runs so that
        per_device_batch_size x accumulation x world_size is the stated global batch."""
        world = world_size or self.gpus_per_stage
        if self.gradient_accumulation_steps % world:
            raise CurriculumError(
                f"curriculum stage {self.name!r}, field 'gradient_accumulation_steps': "
                f"{self.gradient_accumulation_steps} is not a multiple of the {world} GPU(s) it trains on, so the "
                f"global batch {self.effective_batch_size} cannot be kept; use a multiple of {world}")
        return self.gradient_accumulation_steps // world


@dataclass(frozen=True)
class Curriculum:
    base_model: str | None  # HF id or local path; None = the embedded tiny model
    model_max_length: int
    all_stages: tuple[StageConfig, ...]  # every stage in file order, disabled ones included
    checkpoint_store: str | None = None  # s3://bucket/prefix/ or None = the data root
    tokens_per_second_h100: float = 0.0
    throughput_source: str = ""
    profile: str | None = None
    path: str = ""
    # The embedded tiny base's full-parameter pre-training (lib/training/base_pretrain.BasePretrainConfig
    # fields); ignored for a production base (a Hugging Face id is used as it is).
    base_pretrain: dict[str, Any] = field(default_factory=dict)

    @property
    def stages(self) -> tuple[StageConfig, ...]:
        """The enabled stages in training order (each continues from the one before)."""
        return tuple(s for s in self.all_stages if s.enabled)

    def stage(self, name: str) -> StageConfig:
        """A stage by name, enabled or not."""
        for s in self.all_stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r} in the curriculum; stages: {', '.join(s.name for s in self.all_stages)}")

    def sft_chain(self) -> list[StageConfig]:
        """The enabled pretrain and SFT stages in training order (phase A, then B)."""
        return [s for s in self.stages if s.kind in ("pretrain", "sft")]

    def preference_stage(self) -> StageConfig | None:
        return next((s for s in self.stages if s.kind == "preference"), None)


# --- parsing ----------------------------------------------------------------------------------

_TOP_KEYS = {"base_model", "model_max_length", "checkpoint_store", "base_pretrain", "throughput", "defaults", "stages",
             "profiles"}
_PROFILE_KEYS = {"base_model", "model_max_length", "checkpoint_store", "base_pretrain", "throughput", "defaults", "stages"}
_STAGE_KEYS = {f.name for f in dataclasses.fields(StageConfig)} - {"from_stage"} | {"from"}


def _err(stage: str, key: str, message: str) -> CurriculumError:
    return CurriculumError(f"curriculum stage {stage!r}, field {key!r}: {message}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive_int(name: str, key: str, v: Any) -> int:
    if v is None:
        raise _err(name, key, "missing (set it on the stage or under defaults)")
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise _err(name, key, f"must be a positive integer, got {v!r}")
    return v


def _positive_number(name: str, key: str, v: Any) -> float:
    if v is None:
        raise _err(name, key, "missing (set it on the stage or under defaults)")
    if not _is_number(v) or v <= 0:
        raise _err(name, key, f"must be a positive number, got {v!r}")
    return float(v)


def _weights(name: str, key: str, raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise _err(name, key, "must be a non-empty mapping of name -> weight")
    for k, w in raw.items():
        if not _is_number(w) or w <= 0:
            raise _err(name, key, f"weight of {k!r} must be a positive number, got {w!r}")
    total = sum(raw.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise _err(name, key, f"weights sum to {total:.6g}, not 1")
    return {str(k): float(w) for k, w in raw.items()}


def _check_families(name: str, key: str, families: list[str], registry: Registry) -> None:
    holdouts = registry.holdouts()
    for fam in families:
        if fam not in registry.names:
            raise _err(name, key, f"unknown family {fam!r}; the registry has: {', '.join(registry.names)}")
        if fam in holdouts and holdouts[fam].mode == "test_only":
            raise _err(name, key, f"family {fam!r} is test-only (registry holdout policy); no stage may train on it")


def _preference_fields(name: str, raw: dict[str, Any], registry: Registry) -> dict[str, Any]:
    algorithm = raw.get("algorithm", "orpo")
    if algorithm not in ALGORITHMS:
        raise _err(name, "algorithm", f"must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    beta = _positive_number(name, "beta", raw.get("beta"))
    given = raw.get("algorithm_settings") or {}
    if not isinstance(given, dict):
        raise _err(name, "algorithm_settings", "must be a mapping")
    unknown = set(given) - set(ALGORITHMS[algorithm])
    if unknown:
        allowed = ", ".join(ALGORITHMS[algorithm]) or "none"
        raise _err(name, "algorithm_settings", f"{algorithm} has no settings {sorted(unknown)} (it accepts: {allowed})")
    settings = {**ALGORITHMS[algorithm], **given}
    where = "algorithm_settings"
    if algorithm == "simpo":
        ratio = settings["gamma_beta_ratio"]
        if not _is_number(ratio) or not 0 <= ratio <= 1:
            raise _err(name, f"{where}.gamma_beta_ratio", f"SimPO's gamma/beta ratio must be in [0, 1], got {ratio!r}")
        if not _is_number(settings["cpo_alpha"]) or settings["cpo_alpha"] < 0:
            raise _err(name, f"{where}.cpo_alpha", f"must be >= 0 (0 = pure SimPO), got {settings['cpo_alpha']!r}")
    elif algorithm == "dpo":
        if settings["loss_type"] not in DPO_LOSS_TYPES:
            raise _err(name, f"{where}.loss_type", f"must be one of {', '.join(DPO_LOSS_TYPES)}, got {settings['loss_type']!r}")
        ls = settings["label_smoothing"]
        if not _is_number(ls) or not 0 <= ls < 0.5:
            raise _err(name, f"{where}.label_smoothing", f"must be in [0, 0.5), got {ls!r}")
    elif algorithm == "kto":
        for k in ("desirable_weight", "undesirable_weight"):
            if not _is_number(settings[k]) or settings[k] <= 0:
                raise _err(name, f"{where}.{k}", f"must be a positive number, got {settings[k]!r}")
    source_weights = _weights(name, "source_weights", raw.get("source_weights"))
    source_families = raw.get("source_families") or {}
    if not isinstance(source_families, dict) or set(source_families) != set(source_weights):
        raise _err(name, "source_families", f"must list the families of each source in source_weights "
                   f"({', '.join(source_weights)})")
    fams: dict[str, tuple[str, ...]] = {}
    for src, lst in source_families.items():
        if not isinstance(lst, list) or not lst or not all(isinstance(f, str) for f in lst):
            raise _err(name, f"source_families.{src}", "must be a non-empty list of registry families")
        _check_families(name, f"source_families.{src}", lst, registry)
        fams[src] = tuple(lst)
    rejected = raw.get("rejected_source", "stage7_roleplay")
    if rejected not in REJECTED_SOURCES:
        raise _err(name, "rejected_source", f"must be one of {', '.join(REJECTED_SOURCES)}, got {rejected!r}")
    sampling = {**SAMPLING_DEFAULTS, **(raw.get("sampling") or {})}
    if set(sampling) - set(SAMPLING_DEFAULTS):
        raise _err(name, "sampling", f"unknown keys {sorted(set(sampling) - set(SAMPLING_DEFAULTS))}")
    _positive_number(name, "sampling.temperature", sampling["temperature"])
    if not _is_number(sampling["top_p"]) or not 0 < sampling["top_p"] <= 1:
        raise _err(name, "sampling.top_p", f"must be in (0, 1], got {sampling['top_p']!r}")
    _positive_int(name, "sampling.max_new_tokens", sampling["max_new_tokens"])
    # Stage families: each source's weight spread evenly over its families (sums to 1).
    families: dict[str, float] = {}
    for src, lst in fams.items():
        for fam in lst:
            families[fam] = families.get(fam, 0.0) + source_weights[src] / len(lst)
    return dict(algorithm=algorithm, beta=beta, algorithm_settings=settings, source_weights=source_weights,
                source_families=fams, rejected_source=rejected,
                num_samples=_positive_int(name, "num_samples", raw.get("num_samples", 1)),
                sampling=sampling, families=families)


def _placement(name: str, kind: str, raw: dict[str, Any], accumulation: int) -> dict[str, Any]:
    """gpus_per_stage and strategy, checked against the stage's gradient accumulation."""
    gpus = raw.get("gpus_per_stage", 1)
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1:
        raise _err(name, "gpus_per_stage", f"must be a positive integer, got {gpus!r}")
    if accumulation % gpus:
        raise _err(name, "gradient_accumulation_steps", f"{accumulation} is not a multiple of gpus_per_stage "
                   f"({gpus}): the global batch (per_device_batch_size x gradient_accumulation_steps) is split "
                   f"over the GPUs through accumulation, so it must divide evenly")
    strategy = raw.get("strategy", "ddp")
    if strategy not in STRATEGIES:
        raise _err(name, "strategy", f"must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy == "fsdp" and gpus < 2:
        raise _err(name, "strategy", "fsdp shards the model over several GPUs; set gpus_per_stage to 2 or more")
    if strategy == "fsdp" and kind == "preference":
        # align.py saves only the `default` adapter from rank 0's unwrapped model; a sharded one would
        # have to be gathered first. ddp on several GPUs works for the preference stage.
        raise _err(name, "strategy", "the preference stage trains with ddp (fsdp is for the SFT stages)")
    return {"gpus_per_stage": gpus, "strategy": strategy}


def parse_stage(raw: dict[str, Any], registry: Registry, model_max_length: int) -> StageConfig:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CurriculumError(f"curriculum stage without a 'name': {sorted(raw)}")
    unknown = set(raw) - _STAGE_KEYS
    if unknown:
        raise _err(name, sorted(unknown)[0], f"unknown field (known: {', '.join(sorted(_STAGE_KEYS))})")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _err(name, "kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    splits = raw.get("splits", ["train"])
    if splits != ["train"] and splits != ("train",):
        raise _err(name, "splits", f"a stage trains on the train split only, got {splits!r} "
                   "(its validation set is the val split of the same families)")
    values: dict[str, Any] = {"name": name, "kind": kind, "splits": ("train",)}
    if kind == "preference":
        if raw.get("families"):
            raise _err(name, "families", "a preference stage draws from source_weights/source_families, not families")
        values.update(_preference_fields(name, raw, registry))
    else:
        for key in ("algorithm", "beta", "algorithm_settings", "source_weights", "source_families",
                    "rejected_source", "num_samples", "sampling"):
            if raw.get(key) not in (None, {}, []):
                raise _err(name, key, "only a preference stage takes this field")
        values["families"] = _weights(name, "families", raw.get("families"))
        _check_families(name, "families", list(values["families"]), registry)
    for key in POSITIVE_INTS:
        values[key] = _positive_int(name, key, raw.get(key))
    for key in OPTIONAL_POSITIVE_INTS:
        values[key] = None if raw.get(key) is None else _positive_int(name, key, raw.get(key))
    values["learning_rate"] = _positive_number(name, "learning_rate", raw.get("learning_rate"))
    if values["max_length"] > model_max_length:
        raise _err(name, "max_length", f"{values['max_length']} tokens is longer than the model allows "
                   f"({model_max_length}, model_max_length)")
    for key in ("enabled", "oversample", "packing"):
        v = raw.get(key, key == "enabled")
        if not isinstance(v, bool):
            raise _err(name, key, f"must be true or false, got {v!r}")
        values[key] = v
    if values.get("algorithm") == "kto" and values["per_device_batch_size"] < 2:
        raise _err(name, "per_device_batch_size", "KTO needs a batch of at least 2 (desirable and undesirable "
                   f"examples side by side), got {values['per_device_batch_size']}")
    if values["packing"] and kind != "sft":
        raise _err(name, "packing", "only an SFT stage packs sessions")
    long = raw.get("long_conversations", "drop")
    if long not in LONG_CONVERSATIONS:
        raise _err(name, "long_conversations", f"must be one of {', '.join(LONG_CONVERSATIONS)}, got {long!r}")
    values["long_conversations"] = long
    unit = raw.get("mix_unit", "tokens" if kind == "pretrain" else "records")
    if unit not in MIX_UNITS:
        raise _err(name, "mix_unit", f"must be one of {', '.join(MIX_UNITS)}, got {unit!r}")
    values["mix_unit"] = unit
    seed = raw.get("seed", 42)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise _err(name, "seed", f"must be an integer >= 0, got {seed!r}")
    values["seed"] = seed
    values.update(_placement(name, kind, raw, values["gradient_accumulation_steps"]))
    from_stage = raw.get("from")
    if from_stage is not None and not isinstance(from_stage, str):
        raise _err(name, "from", f"must be a stage name or null, got {from_stage!r}")
    values["from_stage"] = from_stage
    return StageConfig(**values)


def _merge(*layers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        out.update({k: v for k, v in (layer or {}).items()})
    return out


def parse_curriculum(data: Any, registry: Registry | None = None, profile: str | None = None, *,
                     model_max_length: int | None = None, path: str = "") -> Curriculum:
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        raise CurriculumError("curriculum must be a mapping with a 'stages' list")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise CurriculumError(f"curriculum: unknown top-level keys {sorted(unknown)}")
    registry = registry or load_registry()
    prof: dict[str, Any] = {}
    if profile:
        profiles = data.get("profiles") or {}
        if profile not in profiles:
            raise CurriculumError(f"curriculum: no profile {profile!r}; profiles: {', '.join(profiles) or 'none'}")
        prof = profiles[profile] or {}
        if set(prof) - _PROFILE_KEYS:
            raise CurriculumError(f"curriculum profile {profile!r}: unknown keys {sorted(set(prof) - _PROFILE_KEYS)}")
    top = _merge(data, {k: v for k, v in prof.items() if k in ("base_model", "model_max_length", "checkpoint_store", "throughput")})
    pretrain = _merge(data.get("base_pretrain"), prof.get("base_pretrain"))
    try:
        from pixel_assets.lib.training.base_pretrain import BasePretrainConfig

        BasePretrainConfig.from_mapping(pretrain)
    except (TypeError, ValueError) as exc:
        raise CurriculumError(f"curriculum: {exc}") from None
    max_len = model_max_length or top.get("model_max_length")
    if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len <= 0:
        raise CurriculumError(f"curriculum: model_max_length must be a positive integer, got {max_len!r}")
    throughput = top.get("throughput") or {}
    tps = throughput.get("tokens_per_second_h100")
    if not _is_number(tps) or tps <= 0 or not str(throughput.get("source") or "").strip():
        raise CurriculumError("curriculum: throughput needs tokens_per_second_h100 (> 0) and its source")
    prof_stages = prof.get("stages") or {}
    names = [s.get("name") for s in data["stages"] if isinstance(s, dict)]
    for stage_name in prof_stages:
        if stage_name not in names:
            raise CurriculumError(f"curriculum profile {profile!r}: no stage {stage_name!r}")
    stages: list[StageConfig] = []
    for raw in data["stages"]:
        if not isinstance(raw, dict):
            raise CurriculumError(f"curriculum: every stage must be a mapping, got {raw!r}")
        merged = _merge(data.get("defaults"), raw, prof.get("defaults"), prof_stages.get(raw.get("name")))
        stage = parse_stage(merged, registry, max_len)
        if any(s.name == stage.name for s in stages):
            raise _err(stage.name, "name", "duplicate stage name")
        stages.append(stage)
    previous: str | None = None
    enabled = [s for s in stages if s.enabled]
    for s in enabled:
        if s.from_stage != previous:
            want = f"the previous enabled stage {previous!r}" if previous else "null (it is the first enabled stage)"
            raise _err(s.name, "from", f"is {s.from_stage!r}; it must be {want}")
        previous = s.name
    if any(s.kind == "preference" for s in enabled[:-1]):
        raise _err(next(s.name for s in enabled if s.kind == "preference"), "kind", "the preference stage must come last")
    return Curriculum(
        base_model=top.get("base_model"), model_max_length=max_len, all_stages=tuple(stages),
        checkpoint_store=top.get("checkpoint_store"), tokens_per_second_h100=float(tps),
        throughput_source=" ".join(str(throughput["source"]).split()), profile=profile, path=path,
        base_pretrain=pretrain,
    )


def load_curriculum(path: str | Path | None = None, registry: Registry | None = None, profile: str | None = None,
                    *, model_max_length: int | None = None) -> Curriculum:
    """Load and validate the curriculum: `path`, else $PIXEL_CURRICULUM, else the packaged file.
    `profile` (else $PIXEL_CURRICULUM_PROFILE): e.g. "demo" (few steps, small caps, short contexts).
    `model_max_length` overrides the file's (e.g. `models.model_max_length(base_dir)` of a local base)."""
    path = path or os.environ.get(CURRICULUM_ENV) or None
    profile = profile or os.environ.get(PROFILE_ENV) or None
    if path:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    else:
        text = resources.files("pixel_assets.config").joinpath(DEFAULT_CURRICULUM).read_text("utf-8")
        where = f"pixel_assets/config/{DEFAULT_CURRICULUM}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CurriculumError(f"curriculum {where} is not valid YAML: {exc}") from exc
    return parse_curriculum(data, registry, profile, model_max_length=model_max_length, path=where)
