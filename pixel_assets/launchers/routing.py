"""A run launcher that sends GPU-tagged runs to a GPU backend and every other run to the default one.

Both backends are existing Dagster run launchers, named in `dagster.yaml` exactly as a
`run_launcher` entry would name them (module, class, config): dagster-k8s's `K8sRunLauncher` or
dagster-aws's `EcsRunLauncher` for the H100 runs, `DefaultRunLauncher` (a local process through
the code server) for the rest unless another one is configured. This class only chooses: it adds
the backend's name to the run as the tag `pixel/run_launcher` before handing the run over, and
sends `terminate`, `check_run_worker_health`, `resume_run` and debug-info requests to the backend
that tag names. Runs are tagged `pixel/gpu=h100` by the training job; the production instance
also limits those to one at a time (queued run coordinator, tag concurrency limit).

    run_launcher:
      module: pixel_assets.launchers.routing
      class: RoutingRunLauncher
      config:
        gpu_launcher:                     # required: where pixel/gpu=h100 runs go
          module: dagster_k8s
          class: K8sRunLauncher
          config: {...}                   # the backend's own config, checked by the backend
        gpu_run_tags:                     # optional: tags added to GPU runs before launch
          ecs/container_overrides: {resourceRequirements: [{type: GPU, value: "1"}]}
        default_launcher:                 # optional, DefaultRunLauncher when left out
          module: dagster
          class: DefaultRunLauncher
        gpu_tag_key: pixel/gpu            # optional, these are the defaults
        gpu_tag_value: h100

`gpu_run_tags` values that are mappings or lists are stored as JSON (the form dagster-aws reads
`ecs/container_overrides` and `ecs/run_task_kwargs` in, and dagster-k8s reads `dagster-k8s/config`).

GPUs per run: a GPU run tagged `pixel/gpus=N` (the training job sets it to the largest
`gpus_per_stage` of the curriculum; stages with N > 1 run `torchrun` on that one machine) asks its
backend for N GPUs: the Kubernetes container limit `nvidia.com/gpu: N` (merged into the run's
`dagster-k8s/config` tag, which dagster-k8s deep-merges over `run_k8s_config`), or the ECS container
override `resourceRequirements: [{type: GPU, value: N}]` (replacing the GPU entry of
`ecs/container_overrides`). Without the tag, the backend's own configuration (one GPU) applies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml
from dagster import DagsterRun, DefaultRunLauncher, Field, Noneable, Permissive, Shape, StringSource

from pixel_assets.dagster_internals import (
    CheckRunHealthResult,
    ConfigurableClass,
    ConfigurableClassData,
    LaunchRunContext,
    ResumeRunContext,
    RunLauncher,
    WorkerStatus,
)

GPU_TAG_KEY = "pixel/gpu"
GPU_TAG_VALUE = "h100"
BACKEND_TAG = "pixel/run_launcher"  # which backend launched the run: "gpu" or "default"
GPU_COUNT_TAG = "pixel/gpus"  # GPUs the run's machine must have (torchrun, one process per GPU)
K8S_CONFIG_TAG = "dagster-k8s/config"
ECS_OVERRIDES_TAG = "ecs/container_overrides"
GPU, DEFAULT = "gpu", "default"

_LAUNCHER_SHAPE = Shape({
    "module": Field(str, description="module of the RunLauncher class, e.g. dagster_k8s"),
    "class": Field(str, description="the RunLauncher class, e.g. K8sRunLauncher"),
    "config": Field(Permissive(), is_required=False, default_value={},
                    description="that launcher's own config (validated by it)"),
})


class RoutingError(ValueError):
    """A backend in the routing launcher's config cannot be loaded; the message names it."""


def _load_backend(role: str, spec: Mapping[str, Any]) -> RunLauncher:
    data = ConfigurableClassData(spec["module"], spec["class"], yaml.safe_dump(dict(spec.get("config") or {})))
    try:
        launcher = data.rehydrate(as_type=RunLauncher)
    except Exception as exc:
        raise RoutingError(f"routing run launcher: {role}_launcher ({spec['module']}.{spec['class']}) "
                           f"could not be loaded: {exc}") from exc
    return launcher


def _tag_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def gpu_count(tags: Mapping[str, str]) -> int | None:
    """The run's `pixel/gpus` tag as a positive integer (None when absent); a bad value is an error."""
    raw = tags.get(GPU_COUNT_TAG)
    if raw is None:
        return None
    if not str(raw).isdigit() or int(raw) < 1:
        raise RoutingError(f"run tag {GPU_COUNT_TAG} must be a positive integer, got {raw!r}")
    return int(raw)


def gpu_count_tags(launcher: RunLauncher, tags: Mapping[str, str], gpus: int) -> dict[str, str]:
    """The backend's own run tags asking for `gpus` GPUs, merged with what the run already carries."""
    module = type(launcher).__module__
    if module.startswith("dagster_k8s"):
        config = json.loads(tags.get(K8S_CONFIG_TAG) or "{}")
        resources = config.setdefault("container_config", {}).setdefault("resources", {})
        resources.setdefault("limits", {})["nvidia.com/gpu"] = str(gpus)
        return {K8S_CONFIG_TAG: _tag_value(config)}
    if module.startswith("dagster_aws"):
        overrides = json.loads(tags.get(ECS_OVERRIDES_TAG) or "{}")
        requirements = [r for r in overrides.get("resourceRequirements", []) if r.get("type") != "GPU"]
        overrides["resourceRequirements"] = [*requirements, {"type": "GPU", "value": str(gpus)}]
        return {ECS_OVERRIDES_TAG: _tag_value(overrides)}
    return {}  # another backend: its own configuration decides


class RoutingRunLauncher(RunLauncher, ConfigurableClass):
    """Runs tagged `gpu_tag_key=gpu_tag_value` go to `gpu_launcher`, all others to `default_launcher`."""

    def __init__(
        self,
        gpu_launcher: RunLauncher | Mapping[str, Any],
        default_launcher: RunLauncher | Mapping[str, Any] | None = None,
        gpu_tag_key: str = GPU_TAG_KEY,
        gpu_tag_value: str = GPU_TAG_VALUE,
        gpu_run_tags: Mapping[str, Any] | None = None,
        inst_data: ConfigurableClassData | None = None,
    ):
        self._inst_data = inst_data
        self.gpu_tag_key = gpu_tag_key
        self.gpu_tag_value = gpu_tag_value
        self.gpu_run_tags = {key: _tag_value(value) for key, value in (gpu_run_tags or {}).items()}
        # Backends are built on first use: a stack without the GPU cluster (docker compose on a
        # laptop) still launches data runs; a GPU run there fails naming the backend.
        self._specs: dict[str, RunLauncher | Mapping[str, Any] | None] = {GPU: gpu_launcher, DEFAULT: default_launcher}
        self._backends: dict[str, RunLauncher] = {}
        super().__init__()

    def backend(self, name: str) -> RunLauncher:
        """The run launcher behind `name` ("gpu" or "default"), loaded and registered on first use."""
        if name not in self._backends:
            spec = self._specs[name]
            if spec is None:
                launcher = DefaultRunLauncher()
            elif isinstance(spec, RunLauncher):
                launcher = spec
            else:
                launcher = _load_backend(name, spec)
            if self.has_instance:
                launcher.register_instance(self._instance)
            self._backends[name] = launcher
        return self._backends[name]

    # --- ConfigurableClass -------------------------------------------------------------------

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls):
        return {
            "gpu_launcher": Field(_LAUNCHER_SHAPE, description="run launcher for GPU-tagged runs"),
            "default_launcher": Field(Noneable(_LAUNCHER_SHAPE), is_required=False, default_value=None,
                                      description="run launcher for every other run (DefaultRunLauncher if unset)"),
            "gpu_tag_key": Field(StringSource, is_required=False, default_value=GPU_TAG_KEY),
            "gpu_tag_value": Field(StringSource, is_required=False, default_value=GPU_TAG_VALUE),
            "gpu_run_tags": Field(Permissive(), is_required=False, default_value={},
                                  description="tags added to GPU runs before launch (mappings stored as JSON)"),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    def register_instance(self, instance) -> None:
        super().register_instance(instance)
        for backend in self._backends.values():
            if not backend.has_instance:
                backend.register_instance(instance)

    # --- routing -----------------------------------------------------------------------------

    def route(self, tags: Mapping[str, str]) -> str:
        """The backend a run with these tags goes to."""
        return GPU if tags.get(self.gpu_tag_key) == self.gpu_tag_value else DEFAULT

    def backend_name(self, run: DagsterRun) -> str:
        """The backend that launched the run (its tag), or the one its tags route to if not launched yet."""
        recorded = run.tags.get(BACKEND_TAG)
        return recorded if recorded in self._specs else self.route(run.tags)

    def backend_for(self, run: DagsterRun) -> RunLauncher:
        return self.backend(self.backend_name(run))

    def _run(self, run_id: str) -> DagsterRun | None:
        return self._instance.get_run_by_id(run_id)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        name = self.route(run.tags)
        tags = {BACKEND_TAG: name, **(self.gpu_run_tags if name == GPU else {})}
        gpus = gpu_count(run.tags) if name == GPU else None
        if gpus is not None:
            tags.update(gpu_count_tags(self.backend(name), {**run.tags, **tags}, gpus))
        self._instance.add_run_tags(run.run_id, tags)
        run = self._run(run.run_id) or run  # the backend reads its settings from the run's tags
        self.backend(name).launch_run(LaunchRunContext(dagster_run=run, workspace=context.workspace))

    def terminate(self, run_id: str) -> bool:
        run = self._run(run_id)
        if run is None:
            return False
        return self.backend_for(run).terminate(run_id)

    # Health checks and resumption are answered per run by its backend (K8sRunLauncher and
    # EcsRunLauncher have both; DefaultRunLauncher neither), so the router always offers them.
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        backend = self.backend_for(run)
        if not backend.supports_check_run_worker_health:
            # What the monitoring daemon does for a launcher without health checks: nothing.
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                f"{type(backend).__name__} ({self.backend_name(run)} backend) has no run worker health check",
            )
        return backend.check_run_worker_health(run)

    @property
    def supports_resume_run(self) -> bool:
        return True

    def resume_run(self, context: ResumeRunContext) -> None:
        backend = self.backend_for(context.dagster_run)
        if not backend.supports_resume_run:
            raise NotImplementedError(
                f"{type(backend).__name__} ({self.backend_name(context.dagster_run)} backend) cannot resume runs; "
                "set run_monitoring.max_resume_run_attempts to 0 or use a backend that can")
        backend.resume_run(context)

    def get_run_worker_debug_info(self, run: DagsterRun, include_container_logs: bool | None = True) -> str | None:
        return self.backend_for(run).get_run_worker_debug_info(run, include_container_logs=include_container_logs)

    def dispose(self) -> None:
        for backend in self._backends.values():
            backend.dispose()

    def join(self, timeout: int = 30) -> None:
        for backend in self._backends.values():
            backend.join(timeout=timeout)
