"""A small code location for the run launcher tests: a data job and a GPU-tagged job (the tag the
training job carries), plus a run launcher that records what it is handed (a GPU backend stand-in
where the test is about routing, not about the backend)."""

import time
from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, RunLauncher, WorkerStatus
from dagster._serdes import ConfigurableClass

GPU_TAGS = {"pixel/gpu": "h100", "pixel/kind": "training"}


@dg.op(config_schema={"barrier_dir": dg.Field(str, default_value="")})
def hold(context: dg.OpExecutionContext) -> str:
    """Writes `<run_id>.started`, then waits for `<run_id>.release` in barrier_dir (if given): the
    test decides when a run ends, so no assertion depends on timing."""
    barrier = context.op_config["barrier_dir"]
    if barrier:
        Path(barrier, f"{context.run_id}.started").touch()
        deadline = time.monotonic() + 120
        while not Path(barrier, f"{context.run_id}.release").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    return context.run_id


@dg.job(tags={"pixel/kind": "data"})
def data_job():
    hold()


@dg.job(tags=GPU_TAGS)
def gpu_job():
    hold()


defs = dg.Definitions(jobs=[data_job, gpu_job])


class RecordingRunLauncher(RunLauncher, ConfigurableClass):
    """Records the calls it gets (class-level, the test process holds the instance)."""

    calls: list = []

    def __init__(self, inst_data=None):
        self._inst_data = inst_data
        super().__init__()

    @property
    def inst_data(self):
        return self._inst_data

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data)

    def launch_run(self, context):
        self.calls.append(("launch", context.dagster_run.run_id, dict(context.dagster_run.tags)))

    def terminate(self, run_id):
        self.calls.append(("terminate", run_id))
        return True

    @property
    def supports_check_run_worker_health(self):
        return True

    def check_run_worker_health(self, run):
        self.calls.append(("health", run.run_id))
        return CheckRunHealthResult(WorkerStatus.RUNNING, "recorded")
