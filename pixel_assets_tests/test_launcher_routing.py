"""The routing run launcher with the real DefaultRunLauncher on the default side: an untagged run
is launched locally and completes; a `pixel/gpu=h100` run goes to the GPU backend, and terminate and
health checks follow the backend recorded on the run."""

import pytest
from dagster import DagsterRunStatus
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import instance_for_test, poll_for_finished_run

from pixel_assets.launchers import BACKEND_TAG, RoutingRunLauncher
from pixel_assets.launchers.routing import RoutingError
from pixel_assets_tests.launcher_jobs import RecordingRunLauncher
from pixel_assets_tests.launching import create_run, jobs_workspace

ROUTING = {
    "module": "pixel_assets.launchers.routing",
    "class": "RoutingRunLauncher",
    "config": {
        "gpu_launcher": {"module": "pixel_assets_tests.launcher_jobs", "class": "RecordingRunLauncher"},
        "gpu_run_tags": {"ecs/container_overrides": {"resourceRequirements": [{"type": "GPU", "value": "1"}]}},
    },
}


def test_untagged_run_runs_locally_and_gpu_run_goes_to_the_gpu_backend():
    RecordingRunLauncher.calls.clear()
    with instance_for_test(overrides={"run_launcher": ROUTING}) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, RoutingRunLauncher)
        with jobs_workspace(instance) as process_context:
            workspace = process_context.create_request_context()
            data_run = create_run(instance, process_context, "data_job")
            instance.launch_run(data_run.run_id, workspace)
            finished = poll_for_finished_run(instance, data_run.run_id, timeout=120)
            assert finished.status == DagsterRunStatus.SUCCESS
            assert finished.tags[BACKEND_TAG] == "default"
            assert "ecs/container_overrides" not in finished.tags  # GPU settings only on GPU runs
            assert not RecordingRunLauncher.calls  # the GPU backend never saw the data run

            gpu_run = create_run(instance, process_context, "gpu_job")
            instance.launch_run(gpu_run.run_id, workspace)
            [(call, run_id, tags)] = RecordingRunLauncher.calls
            assert (call, run_id) == ("launch", gpu_run.run_id)
            # the backend was handed the run with the routing tag and the GPU run tags on it
            assert tags[BACKEND_TAG] == "gpu" and '"GPU"' in tags["ecs/container_overrides"]
            gpu_run = instance.get_run_by_id(gpu_run.run_id)
            assert gpu_run.status == DagsterRunStatus.STARTING  # nothing ran it locally

            assert launcher.check_run_worker_health(gpu_run).msg == "recorded"
            assert launcher.terminate(gpu_run.run_id) is True
            assert RecordingRunLauncher.calls[1:] == [("health", gpu_run.run_id), ("terminate", gpu_run.run_id)]
            # DefaultRunLauncher has no health check: the default-side run is left alone, not failed
            assert launcher.check_run_worker_health(finished).status == WorkerStatus.RUNNING
            assert launcher.terminate(data_run.run_id) is False  # finished: nothing to terminate
            assert len(RecordingRunLauncher.calls) == 3


def test_recorded_backend_wins_over_the_tags():
    """A run keeps going to the backend that launched it even if its routing tag changes later."""
    from dagster._core.storage.dagster_run import DagsterRun

    launcher = RoutingRunLauncher(gpu_launcher=RecordingRunLauncher())
    assert launcher.backend_name(DagsterRun(job_name="x", tags={"pixel/gpu": "h100"})) == "gpu"
    assert launcher.backend_name(DagsterRun(job_name="x", tags={"pixel/gpu": "a100"})) == "default"
    assert launcher.backend_name(DagsterRun(job_name="x", tags={"pixel/gpu": "h100", BACKEND_TAG: "default"})) == "default"


def test_a_gpu_backend_that_cannot_load_fails_gpu_runs_only_naming_it():
    """docker compose without a cluster: data runs still launch; a GPU run fails naming the backend."""
    from dagster._core.launcher import DefaultRunLauncher

    launcher = RoutingRunLauncher(gpu_launcher={"module": "dagster_k8s", "class": "NoSuchLauncher", "config": {}})
    assert isinstance(launcher.backend("default"), DefaultRunLauncher)
    with pytest.raises(RoutingError, match=r"gpu_launcher \(dagster_k8s.NoSuchLauncher\) could not be loaded"):
        launcher.backend("gpu")
