"""The GPU backend on ECS: docker/dagster.ecs.yaml's routing launcher (dagster-aws EcsRunLauncher
behind it) against moto's ECS server on 127.0.0.1. The GPU run's RunTask reaches the server with
the GPU resource requirement and the H100 capacity provider; health checks and termination go
through the same launcher to the same task. A data run never reaches ECS."""

import json
from pathlib import Path

import boto3
import pytest
import yaml
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import instance_for_test

from pixel_assets.launchers import BACKEND_TAG
from pixel_assets_tests.launching import create_run, jobs_workspace

REPO = Path(__file__).resolve().parents[1]
TRAINER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pixel-trainer:test"


@pytest.fixture
def ecs_cluster(s3_server, monkeypatch):
    """A cluster with one registered EC2 container instance, the H100 capacity provider and the
    trainer's task definition, on moto's server (all AWS clients pointed at it)."""
    from moto.ec2.utils import generate_instance_identity_document

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    ecs = boto3.client("ecs", region_name="us-east-1")
    ec2 = boto3.resource("ec2", region_name="us-east-1")
    autoscaling = boto3.client("autoscaling", region_name="us-east-1")
    ecs.create_cluster(clusterName="pixel")
    image_id = boto3.client("ec2", region_name="us-east-1").describe_images()["Images"][0]["ImageId"]
    [instance] = ec2.create_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m5.4xlarge")
    ecs.register_container_instance(
        cluster="pixel", instanceIdentityDocument=json.dumps(generate_instance_identity_document(instance)))
    autoscaling.create_launch_configuration(LaunchConfigurationName="p5", ImageId=image_id, InstanceType="p5.48xlarge")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="pixel-h100", LaunchConfigurationName="p5",
                                          MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"])
    group_arn = autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]["AutoScalingGroupARN"]
    ecs.create_capacity_provider(name="pixel-h100", autoScalingGroupProvider={"autoScalingGroupArn": group_arn})
    ecs.put_cluster_capacity_providers(cluster="pixel", capacityProviders=["pixel-h100"],
                                       defaultCapacityProviderStrategy=[])
    ecs.register_task_definition(family="pixel-trainer", containerDefinitions=[
        {"name": "run", "image": TRAINER_IMAGE, "memory": 1024, "cpu": 256}])
    monkeypatch.setenv("PIXEL_TRAINER_TASK_DEFINITION", "pixel-trainer")
    monkeypatch.setenv("PIXEL_ECS_CLUSTER", "pixel")
    for name in ("DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_DB", "DAGSTER_POSTGRES_PORT",
                 "PIXEL_S3_BUCKET", "PIXEL_S3_PREFIX", "PIXEL_COMPUTE_LOG_BUCKET"):
        monkeypatch.setenv(name, "x")
    return ecs


def test_gpu_run_becomes_an_ecs_task_with_a_gpu(ecs_cluster):
    launcher_config = yaml.safe_load((REPO / "docker" / "dagster.ecs.yaml").read_text())["run_launcher"]
    with instance_for_test(overrides={"run_launcher": launcher_config}) as instance:
        launcher = instance.run_launcher
        with jobs_workspace(instance) as process_context:
            before = set(ecs_cluster.list_tasks(cluster="pixel")["taskArns"])  # the endpoint is shared
            run = create_run(instance, process_context, "gpu_job")
            instance.launch_run(run.run_id, process_context.create_request_context())

        [task_arn] = set(ecs_cluster.list_tasks(cluster="pixel")["taskArns"]) - before
        [task] = ecs_cluster.describe_tasks(cluster="pixel", tasks=[task_arn])["tasks"]
        assert task["taskDefinitionArn"].rsplit(":", 1)[0].endswith("task-definition/pixel-trainer")  # any revision
        assert task["capacityProviderName"] == "pixel-h100"
        [container] = task["overrides"]["containerOverrides"]
        assert container["name"] == "run"
        assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
        assert container["command"][:3] == ["dagster", "api", "execute_run"]  # what the trainer image runs
        assert run.run_id in json.dumps(container["command"])

        run = instance.get_run_by_id(run.run_id)
        assert run.tags[BACKEND_TAG] == "gpu" and run.tags["ecs/task_arn"] == task_arn
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        assert launcher.terminate(run.run_id) is True
        [task] = ecs_cluster.describe_tasks(cluster="pixel", tasks=[task_arn])["tasks"]
        assert task["lastStatus"] == "STOPPED"
        assert task_arn not in ecs_cluster.list_tasks(cluster="pixel", desiredStatus="RUNNING")["taskArns"]
