"""The production instance (docker/dagster.yaml) on a real PostgreSQL on 127.0.0.1: it loads through
Dagster's own instance loading and config validation, and the daemon's queued run coordinator keeps
GPU runs one at a time without holding back data runs. Only the GPU backend of the run launcher is
swapped (there is no H100 cluster here): both sides launch local processes."""

import time
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.instance.config import dagster_instance_config
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from pixel_assets.launchers import BACKEND_TAG, RoutingRunLauncher
from pixel_assets_tests.launching import create_run, jobs_workspace, stop_code_servers
from pixel_assets_tests.postgres_server import postgres_on_loopback

REPO = Path(__file__).resolve().parents[1]
LOCAL = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher", "config": {}}


@pytest.fixture
def production_env(tmp_path, s3_server, s3_client, monkeypatch):
    """PostgreSQL on loopback, the compute-log bucket on moto's S3, and the variables dagster.yaml reads."""
    with postgres_on_loopback() as port:
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)  # S3ComputeLogManager's client and the run workers'
        s3_client.create_bucket(Bucket="compute-logs")
        for name, value in {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": str(port),
                            "DAGSTER_POSTGRES_USER": "postgres", "DAGSTER_POSTGRES_PASSWORD": "unused-trust-auth",
                            "DAGSTER_POSTGRES_DB": "dagster", "PIXEL_COMPUTE_LOG_BUCKET": "compute-logs"}.items():
            monkeypatch.setenv(name, value)
        try:
            yield tmp_path
        finally:
            stop_code_servers()  # before PostgreSQL stops: no code server left waiting on it


def test_production_configs_pass_dagster_validation():
    for name in ("dagster.yaml", "dagster.ecs.yaml"):
        home = REPO / "docker"
        if name != "dagster.yaml":  # dagster_instance_config reads <dir>/dagster.yaml
            import shutil
            import tempfile

            home = Path(tempfile.mkdtemp())
            shutil.copy(REPO / "docker" / name, home / "dagster.yaml")
        config, _ = dagster_instance_config(str(home))
        launcher = config["run_launcher"]
        assert (launcher["module"], launcher["class"]) == ("pixel_assets.launchers.routing", "RoutingRunLauncher")
        assert {"key": "pixel/gpu", "value": "h100", "limit": 1} in config["run_coordinator"]["config"]["tag_concurrency_limits"]


def _iterate(daemon, process_context, times: int = 1) -> None:
    for _ in range(times):
        list(daemon.run_iteration(process_context))


def _wait(instance, run_id, statuses, timeout=180) -> DagsterRunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = instance.get_run_by_id(run_id).status
        if status in statuses:
            return status
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {status}, expected one of {statuses}")


def test_gpu_runs_never_overlap_and_data_runs_are_not_held_back(production_env):
    home = production_env / "home"
    home.mkdir()
    config = yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())
    config["run_launcher"]["config"]["gpu_launcher"] = LOCAL  # no H100 cluster here
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    barrier = production_env / "barrier"
    barrier.mkdir()
    finished = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)

    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert isinstance(instance.run_launcher, RoutingRunLauncher)
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        with jobs_workspace(instance) as process_context:
            workspace = process_context.create_request_context()
            gpu1, gpu2, data = (create_run(instance, process_context, job, barrier_dir=str(barrier))
                                for job in ("gpu_job", "gpu_job", "data_job"))
            (barrier / f"{data.run_id}.release").touch()  # the data run ends as soon as it starts
            for run in (gpu1, gpu2, data):
                instance.submit_run(run.run_id, workspace)
                assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.QUEUED

            _iterate(daemon, process_context)
            assert instance.get_run_by_id(gpu1.run_id).status != DagsterRunStatus.QUEUED
            assert instance.get_run_by_id(data.run_id).status != DagsterRunStatus.QUEUED
            assert instance.get_run_by_id(gpu2.run_id).status == DagsterRunStatus.QUEUED

            # the data run finishes while the first GPU run still holds the GPU
            assert _wait(instance, data.run_id, finished) == DagsterRunStatus.SUCCESS
            _wait(instance, gpu1.run_id, (DagsterRunStatus.STARTED,))
            deadline = time.monotonic() + 120
            while not (barrier / f"{gpu1.run_id}.started").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            _iterate(daemon, process_context, times=3)
            assert instance.get_run_by_id(gpu2.run_id).status == DagsterRunStatus.QUEUED
            assert not (barrier / f"{gpu2.run_id}.started").exists()

            (barrier / f"{gpu1.run_id}.release").touch()
            assert _wait(instance, gpu1.run_id, finished) == DagsterRunStatus.SUCCESS
            _iterate(daemon, process_context)
            assert instance.get_run_by_id(gpu2.run_id).status != DagsterRunStatus.QUEUED
            (barrier / f"{gpu2.run_id}.release").touch()
            assert _wait(instance, gpu2.run_id, finished) == DagsterRunStatus.SUCCESS

        records = {r.dagster_run.run_id: r for r in instance.get_run_records()}
        first, second, data_record = records[gpu1.run_id], records[gpu2.run_id], records[data.run_id]
        assert first.end_time <= second.start_time  # the two GPU runs never overlapped
        assert data_record.end_time < first.end_time  # the data run did not wait for them
        assert {r.dagster_run.tags[BACKEND_TAG] for r in (first, second)} == {"gpu"}
        assert data_record.dagster_run.tags[BACKEND_TAG] == "default"
