"""Where the steps of the data job run, chosen by PIXEL_DATA_EXECUTOR (no code edit to switch).

- `multiprocess` (default): every step in its own process on the machine the run worker is on
  (Dagster's default executor), what `dagster dev`, the tests and docker compose use.
- `k8s`: every step (one ingest and one PII step per family, dedup, splits, compile, each gate
  report) in its own Kubernetes pod through dagster-k8s's `k8s_job_executor`, for 10-100x today's
  data. Pods use the code-location image (PIXEL_DATA_IMAGE) in PIXEL_K8S_NAMESPACE, secrets by
  reference (the Secret `pixel-run-secrets`), and the sizing below; PIXEL_K8S_MAX_CONCURRENT caps
  how many step pods run at once. Sizing and reasoning: docs/operations.md.

This module only builds the executor definition: no Kubernetes API is touched until a run starts.
"""

import os

import dagster as dg

EXECUTOR_VAR = "PIXEL_DATA_EXECUTOR"
EXECUTORS = ("multiprocess", "k8s")

# One step pod: the PII step of a family is the heaviest (presidio + spaCy, ~2 h per 1M
# conversations per core; its content-hash cache makes nightly runs incremental); dedup and
# compile hold the whole frame (~6.4 GB peak RSS at 1M conversations).
STEP_RESOURCES = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "16Gi"}}
PASS_THROUGH_ENV = ["DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_DB", "DAGSTER_POSTGRES_PORT",
                    "PIXEL_S3_BUCKET", "PIXEL_S3_PREFIX", "PIXEL_S3_ENDPOINT_URL", "PIXEL_COMPUTE_LOG_BUCKET"]


class ExecutorConfigError(ValueError):
    """PIXEL_DATA_EXECUTOR or a setting it needs is wrong; the message names the variable."""


def data_job_executor() -> dg.ExecutorDefinition | None:
    """The executor for compile_dataset: None (the default multiprocess executor) or k8s_job_executor."""
    kind = os.environ.get(EXECUTOR_VAR, "").strip() or "multiprocess"
    if kind == "multiprocess":
        return None
    if kind != "k8s":
        raise ExecutorConfigError(f"{EXECUTOR_VAR} must be one of {', '.join(EXECUTORS)}, not {kind!r}")
    max_concurrent = os.environ.get("PIXEL_K8S_MAX_CONCURRENT", "20")
    if not max_concurrent.isdigit() or int(max_concurrent) < 1:
        raise ExecutorConfigError("PIXEL_K8S_MAX_CONCURRENT must be a positive integer")
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(
        {
            "job_image": {"env": "PIXEL_DATA_IMAGE"},
            "job_namespace": {"env": "PIXEL_K8S_NAMESPACE"},
            "service_account_name": {"env": "PIXEL_K8S_SERVICE_ACCOUNT"},
            "env_secrets": ["pixel-run-secrets"],
            "env_vars": PASS_THROUGH_ENV,
            "max_concurrent": int(max_concurrent),
            "step_k8s_config": {
                "container_config": {
                    "resources": STEP_RESOURCES,
                    "security_context": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False},
                },
                "job_spec_config": {"ttl_seconds_after_finished": 86400},
            },
        },
        name="k8s_data_steps",
    )
