"""A GPU run tagged `pixel/gpus=N` asks its backend for N GPUs: the Kubernetes Job the recording API
server receives has the container limit nvidia.com/gpu = N, and the ECS RunTask that moto's server
receives has the GPU resource requirement N. Without the tag the backends' own one GPU stays."""

import json

import pytest
import yaml
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.test_utils import instance_for_test

from pixel_assets.launchers.routing import GPU_COUNT_TAG, RoutingError, RoutingRunLauncher, gpu_count
from pixel_assets_tests.launching import create_run, jobs_workspace
from pixel_assets_tests.test_launcher_ecs import REPO, ecs_cluster  # noqa: F401 (fixture)
from pixel_assets_tests.test_launcher_k8s import K8S_ENV, FakeKubernetesApi, fake_k8s, production_launcher  # noqa: F401


def test_a_two_gpu_run_becomes_a_job_asking_for_two_gpus(fake_k8s, monkeypatch):  # noqa: F811
    for name, value in K8S_ENV.items():
        monkeypatch.setenv(name, value)
    with instance_for_test(overrides={"run_launcher": production_launcher(str(fake_k8s))}) as instance:
        with jobs_workspace(instance) as process_context:
            run = create_run(instance, process_context, "gpu_job", tags={GPU_COUNT_TAG: "2"})
            instance.launch_run(run.run_id, process_context.create_request_context())
        [job] = FakeKubernetesApi.jobs.values()
        pod = job["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
        # the rest of run_k8s_config is deep-merged, not replaced
        assert container["resources"]["limits"]["memory"] == "120Gi"
        assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
        assert instance.run_launcher.terminate(run.run_id)


def test_a_two_gpu_run_becomes_an_ecs_task_with_two_gpus(ecs_cluster):  # noqa: F811
    launcher_config = yaml.safe_load((REPO / "docker" / "dagster.ecs.yaml").read_text())["run_launcher"]
    # The ECS endpoint may already hold tasks of other launcher tests: take the one this run adds.
    before = set(ecs_cluster.list_tasks(cluster="pixel")["taskArns"])
    with instance_for_test(overrides={"run_launcher": launcher_config}) as instance:
        with jobs_workspace(instance) as process_context:
            run = create_run(instance, process_context, "gpu_job", tags={GPU_COUNT_TAG: "2"})
            instance.launch_run(run.run_id, process_context.create_request_context())
        [task_arn] = set(ecs_cluster.list_tasks(cluster="pixel")["taskArns"]) - before
        [task] = ecs_cluster.describe_tasks(cluster="pixel", tasks=[task_arn])["tasks"]
        [container] = task["overrides"]["containerOverrides"]
        assert container["resourceRequirements"] == [{"type": "GPU", "value": "2"}]
        assert json.loads(instance.get_run_by_id(run.run_id).tags["ecs/container_overrides"])[
            "resourceRequirements"] == [{"type": "GPU", "value": "2"}]
        assert instance.run_launcher.terminate(run.run_id)  # leave the shared endpoint with no running task


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_gpu_count_is_an_error(value):
    with pytest.raises(RoutingError, match="pixel/gpus must be a positive integer"):
        gpu_count({GPU_COUNT_TAG: value})
    assert gpu_count({}) is None


def test_a_data_run_ignores_the_gpu_count():
    launcher = RoutingRunLauncher(gpu_launcher={"module": "x", "class": "Y"})
    assert launcher.route(DagsterRun(job_name="x", tags={GPU_COUNT_TAG: "4"}).tags) == "default"
