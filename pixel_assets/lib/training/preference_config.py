"""PreferenceConfig: the settings of stage C (preference data + alignment), TRL style.

The Dagster side builds it from the curriculum's `preference` stage entry (`from_stage`); tests
build it directly. `validate()` raises PreferenceConfigError naming the field, so a bad curriculum
entry fails when the definitions load, not hours into a run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pixel_assets.lib.training.sampling import SamplingConfig, SamplingConfigError

ALGORITHMS = ("orpo", "simpo", "dpo", "kto")
REJECTED_SOURCES = ("stage7_roleplay", "none")
# Preference-pair sources (SPEC §7) and the registry families each draws from.
SOURCE_FAMILIES: dict[str, tuple[str, ...]] = {
    "dpo_preference": ("dpo_preference",),
    "roleplay": ("roleplay_simulator",),
    "edge_case": ("edge_case_generator", "edge_case_resulting_chats", "edge_case_synthetic",
                  "safety_guardrails_annihilator"),  # the stage-3 edge families
}
SAMPLED_SOURCES = ("roleplay", "edge_case")  # rejected response sampled from the stage-7 checkpoint
DEFAULT_SOURCE_WEIGHTS = {"dpo_preference": 0.5, "roleplay": 0.3, "edge_case": 0.2}

DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero", "apo_down")
# Each algorithm's own settings: name -> (default, check, what the check wants).
_NUM = (int, float)
ALGORITHM_SETTINGS: dict[str, dict[str, tuple[Any, Any, str]]] = {
    "orpo": {},  # beta is ORPO's lambda (weight of the odds-ratio term)
    "simpo": {  # SimPO's margin as a share of beta (TRL's simpo_gamma = gamma_beta_ratio * beta)
        "gamma_beta_ratio": (0.5, lambda v: isinstance(v, _NUM) and 0 <= v <= 1, "a number in [0, 1]"),
        "cpo_alpha": (0.0, lambda v: isinstance(v, _NUM) and v >= 0, "a number >= 0 (0 = pure SimPO)"),
    },
    "dpo": {
        "loss_type": ("sigmoid", lambda v: v in DPO_LOSS_TYPES, f"one of {', '.join(DPO_LOSS_TYPES)}"),
        "label_smoothing": (0.0, lambda v: isinstance(v, _NUM) and 0 <= v < 0.5, "a number in [0, 0.5)"),
    },
    "kto": {
        "desirable_weight": (1.0, lambda v: isinstance(v, _NUM) and v > 0, "a number > 0"),
        "undesirable_weight": (1.0, lambda v: isinstance(v, _NUM) and v > 0, "a number > 0"),
    },
}


class PreferenceConfigError(ValueError):
    """Invalid preference-stage settings; the message names the field."""


@dataclass
class PreferenceConfig:
    algorithm: str = "orpo"
    beta: float = 0.1
    settings: dict[str, Any] = field(default_factory=dict)  # the algorithm's own settings (ALGORITHM_SETTINGS)
    # training
    learning_rate: float = 3e-5
    epochs: float = 1
    max_steps: int | None = None
    per_device_batch_size: int = 2
    gradient_accumulation_steps: int = 1
    max_length: int = 4096
    eval_steps: int = 50
    save_steps: int = 50
    early_stopping_patience: int | None = 3
    seed: int = 0
    logging_steps: int = 10
    keep_progress: bool = False  # keep _progress after a completed stage
    report_to: tuple[str, ...] = ()  # ("wandb",) with a run initialised first (tracking.wandb_run)
    # data
    source_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SOURCE_WEIGHTS))
    source_families: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(SOURCE_FAMILIES))
    rejected_source: str = "stage7_roleplay"
    # Per roleplay / edge-case prompt, `sampling.num_samples` answers are drawn; the first that is
    # neither empty nor the chosen text becomes the rejected response.
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    max_train_pairs: int | None = None
    max_val_pairs: int | None = None

    def __post_init__(self) -> None:
        self.report_to = tuple(self.report_to)
        self.source_families = {k: tuple(v) for k, v in dict(self.source_families).items()}
        if isinstance(self.sampling, dict):
            try:
                self.sampling = SamplingConfig.from_dict(self.sampling, "preference.sampling")
            except (SamplingConfigError, TypeError) as exc:
                raise PreferenceConfigError(str(exc)) from exc

    # -- validation -------------------------------------------------------------------------
    def algorithm_settings(self) -> dict[str, Any]:
        """The algorithm's settings with defaults filled in (validated)."""
        self.validate()
        spec = ALGORITHM_SETTINGS[self.algorithm]
        return {k: self.settings.get(k, default) for k, (default, _check, _want) in spec.items()}

    def validate(self) -> "PreferenceConfig":
        where = "preference"
        if self.algorithm not in ALGORITHMS:
            raise PreferenceConfigError(f"{where}.algorithm must be one of {list(ALGORITHMS)}, got {self.algorithm!r}")
        spec = ALGORITHM_SETTINGS[self.algorithm]
        if not isinstance(self.settings, dict):
            raise PreferenceConfigError(f"{where}.settings must be a mapping, got {type(self.settings).__name__}")
        unknown = sorted(set(self.settings) - set(spec))
        if unknown:
            known = sorted(spec) or "none"
            raise PreferenceConfigError(
                f"{where}.settings: {unknown} not a setting of {self.algorithm!r} (its settings: {known})")
        for key, value in self.settings.items():
            _default, check, wanted = spec[key]
            if not check(value):
                raise PreferenceConfigError(f"{where}.settings.{key} ({self.algorithm}) must be {wanted}, got {value!r}")
        positive = {"beta": self.beta, "learning_rate": self.learning_rate, "epochs": self.epochs,
                    "max_length": self.max_length, "eval_steps": self.eval_steps, "save_steps": self.save_steps,
                    "per_device_batch_size": self.per_device_batch_size,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps}
        for name, value in positive.items():
            if not isinstance(value, _NUM) or isinstance(value, bool) or value <= 0:
                raise PreferenceConfigError(f"{where}.{name} must be a positive number, got {value!r}")
        for name in ("max_steps", "max_train_pairs", "max_val_pairs", "early_stopping_patience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise PreferenceConfigError(f"{where}.{name} must be a positive integer or null, got {value!r}")
        if self.early_stopping_patience and self.save_steps % self.eval_steps:
            raise PreferenceConfigError(
                f"{where}.save_steps ({self.save_steps}) must be a multiple of eval_steps ({self.eval_steps}) "
                "so the best evaluated checkpoint is on disk")
        if self.algorithm == "kto" and self.per_device_batch_size * self.gradient_accumulation_steps < 2:
            raise PreferenceConfigError(
                f"{where}.per_device_batch_size: KTO needs more than one example per batch "
                f"(its KL estimate pairs each example with another), got {self.per_device_batch_size}")
        if self.rejected_source not in REJECTED_SOURCES:
            raise PreferenceConfigError(
                f"{where}.rejected_source must be one of {list(REJECTED_SOURCES)}, got {self.rejected_source!r}")
        self._validate_weights(where)
        try:
            self.sampling.validate(f"{where}.sampling")
        except SamplingConfigError as exc:
            raise PreferenceConfigError(str(exc)) from exc
        return self

    def _validate_weights(self, where: str) -> None:
        w = self.source_weights
        if not isinstance(w, dict) or not w:
            raise PreferenceConfigError(f"{where}.source_weights must be a non-empty mapping")
        unknown = sorted(set(w) - set(SOURCE_FAMILIES))
        if unknown:
            raise PreferenceConfigError(
                f"{where}.source_weights: unknown source(s) {unknown}; known: {sorted(SOURCE_FAMILIES)}")
        missing = sorted(set(w) - set(self.source_families))
        if missing:
            raise PreferenceConfigError(f"{where}.source_families: no families listed for source(s) {missing}")
        for name, fams in self.source_families.items():
            if not fams or not all(isinstance(f, str) for f in fams):
                raise PreferenceConfigError(f"{where}.source_families.{name} must be a non-empty list of families")
        for name, value in w.items():
            if not isinstance(value, _NUM) or isinstance(value, bool) or value < 0:
                raise PreferenceConfigError(f"{where}.source_weights.{name} must be a number >= 0, got {value!r}")
        if abs(sum(w.values()) - 1.0) > 1e-6:
            raise PreferenceConfigError(f"{where}.source_weights must sum to 1, got {sum(w.values()):.6g}")

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_stage(cls, stage: Any, **overrides: Any) -> "PreferenceConfig":
        """From the curriculum's preference StageConfig (attribute names as in curriculum.py)."""
        def pick(*names: str, default: Any = None) -> Any:
            for n in names:
                value = stage.get(n) if isinstance(stage, dict) else getattr(stage, n, None)
                if value is not None:
                    return value
            return default

        sampling = pick("sampling")
        if sampling is not None and not isinstance(sampling, SamplingConfig):
            sampling = dict(asdict(sampling) if hasattr(sampling, "__dataclass_fields__") else sampling)
        num_samples = pick("num_samples", "sample_count", "samples")
        if num_samples is not None:
            sampling = {**(sampling if isinstance(sampling, dict) else asdict(sampling or SamplingConfig())),
                        "num_samples": num_samples}
        values = dict(
            algorithm=pick("algorithm", default="orpo"), beta=pick("beta", default=0.1),
            settings=dict(pick("algorithm_settings", "settings", default={}) or {}),
            learning_rate=pick("learning_rate", default=3e-5), epochs=pick("epochs", default=1),
            max_steps=pick("max_steps"), per_device_batch_size=pick("per_device_batch_size", default=2),
            gradient_accumulation_steps=pick("gradient_accumulation_steps", default=1),
            max_length=pick("max_length", default=4096), eval_steps=pick("eval_steps", default=50),
            save_steps=pick("save_steps", default=50),
            early_stopping_patience=pick("early_stopping_patience", default=3), seed=pick("seed", default=0),
            source_weights=dict(pick("source_weights", default=DEFAULT_SOURCE_WEIGHTS)),
            source_families=dict(pick("source_families", default=SOURCE_FAMILIES)),
            logging_steps=pick("logging_steps", default=10), report_to=tuple(pick("report_to", default=()) or ()),
            rejected_source=pick("rejected_source", default="stage7_roleplay"),
            sampling=sampling if sampling is not None else SamplingConfig(),
            max_train_pairs=pick("max_train_pairs", "max_train_records"),
            max_val_pairs=pick("max_val_pairs", "max_val_records"),
        )
        values.update(overrides)
        return cls(**values).validate()

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sampling"] = self.sampling.as_dict()
        out["source_families"] = {k: list(v) for k, v in self.source_families.items()}
        out["report_to"] = list(self.report_to)
        return out

    def fingerprint(self) -> str:
        """Hash of everything that changes what the stage's checkpoints contain."""
        skip = {"report_to", "keep_progress", "logging_steps"}
        data = {k: v for k, v in self.as_dict().items() if k not in skip}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
