"""The GPU backend on Kubernetes: the Job that dagster-k8s's K8sRunLauncher (configured as in
docker/dagster.yaml, behind the routing launcher) sends for a pixel/gpu=h100 run, read as the
Kubernetes object the API server receives. The API server here is a small recorder on 127.0.0.1
that the real kubernetes client talks HTTP to; health checks and termination reach it through
the same launcher. A live test launches on a real cluster when KUBECONFIG is set."""

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import instance_for_test

from pixel_assets.launchers import BACKEND_TAG
from pixel_assets_tests.launching import create_run, jobs_workspace

REPO = Path(__file__).resolve().parents[1]
TRAINER_IMAGE = "registry.example/pixel-trainer:test"
K8S_ENV = {
    "PIXEL_K8S_NAMESPACE": "pixel", "PIXEL_K8S_SERVICE_ACCOUNT": "pixel-runner",
    "PIXEL_K8S_INSTANCE_CONFIG_MAP": "pixel-dagster-instance", "PIXEL_TRAINER_IMAGE": TRAINER_IMAGE,
    "DAGSTER_POSTGRES_HOST": "postgres", "DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_DB": "dagster",
    "DAGSTER_POSTGRES_PORT": "5432", "PIXEL_S3_BUCKET": "bucket", "PIXEL_S3_PREFIX": "", "PIXEL_COMPUTE_LOG_BUCKET": "logs",
}


class FakeKubernetesApi(BaseHTTPRequestHandler):
    """Records Job creations and deletions; reports created Jobs as active."""

    jobs: dict = {}
    requests: list = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("POST", self.path))
        self.jobs[body["metadata"]["name"]] = body
        self._send(201, body)

    def do_GET(self):
        self.requests.append(("GET", self.path))
        if "/pods" in self.path:
            return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []})
        match = re.search(r"/jobs/([^/?]+)", self.path)
        job = self.jobs.get(match.group(1)) if match else None
        if job is None:
            return self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
        self._send(200, {**job, "status": {"active": 1}})

    def do_DELETE(self):
        self.requests.append(("DELETE", self.path))
        self.jobs.pop(re.search(r"/jobs/([^/?]+)", self.path).group(1), None)
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


@pytest.fixture
def fake_k8s(tmp_path):
    FakeKubernetesApi.jobs, FakeKubernetesApi.requests = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKubernetesApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "test", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    try:
        yield kubeconfig
    finally:
        server.shutdown()
        server.server_close()


def production_launcher(kubeconfig: str) -> dict:
    """docker/dagster.yaml's run_launcher, with the in-cluster config swapped for a kubeconfig
    (the only thing that cannot exist outside a cluster)."""
    launcher = yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())["run_launcher"]
    k8s = launcher["config"]["gpu_launcher"]["config"]
    k8s.update(load_incluster_config=False, kubeconfig_file=kubeconfig)
    return launcher


def test_gpu_run_becomes_an_h100_job(fake_k8s, monkeypatch):
    for name, value in K8S_ENV.items():
        monkeypatch.setenv(name, value)
    with instance_for_test(overrides={"run_launcher": production_launcher(str(fake_k8s))}) as instance:
        launcher = instance.run_launcher
        with jobs_workspace(instance) as process_context:
            run = create_run(instance, process_context, "gpu_job")
            instance.launch_run(run.run_id, process_context.create_request_context())

        [(name, job)] = FakeKubernetesApi.jobs.items()
        assert job["kind"] == "Job"
        assert ("POST", "/apis/batch/v1/namespaces/pixel/jobs") in FakeKubernetesApi.requests
        assert job["metadata"]["labels"]["dagster/run-id"] == run.run_id
        pod = job["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["image"] == TRAINER_IMAGE
        assert container["args"][:3] == ["dagster", "api", "execute_run"]  # what the trainer image runs
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert container["securityContext"]["runAsNonRoot"] is True
        assert pod["serviceAccountName"] == "pixel-runner"
        # secrets by reference only: the Secret's keys as environment, no secret volume or value
        assert {"secretRef": {"name": "pixel-run-secrets"}} in container["envFrom"]
        assert not [v for v in pod.get("volumes", []) if "secret" in v]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert "DAGSTER_POSTGRES_PASSWORD" not in env and env["DAGSTER_POSTGRES_HOST"] == "postgres"

        run = instance.get_run_by_id(run.run_id)
        assert run.tags[BACKEND_TAG] == "gpu" and run.tags["dagster/image"] == TRAINER_IMAGE
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        assert launcher.terminate(run.run_id) is True
        assert ("DELETE", f"/apis/batch/v1/namespaces/pixel/jobs/{name}") in FakeKubernetesApi.requests
        assert not FakeKubernetesApi.jobs


@pytest.mark.skipif(not os.environ.get("KUBECONFIG"),
                    reason="live Kubernetes test: set KUBECONFIG (and PIXEL_TRAINER_IMAGE, PIXEL_K8S_*) to run it")
def test_gpu_run_launches_on_a_live_cluster(monkeypatch):
    """On a real cluster: the Job is created in the namespace, seen by the health check, deleted on terminate."""
    for name, value in K8S_ENV.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    with instance_for_test(overrides={"run_launcher": production_launcher(os.environ["KUBECONFIG"])}) as instance:
        launcher = instance.run_launcher
        with jobs_workspace(instance) as process_context:
            run = create_run(instance, process_context, "gpu_job")
            instance.launch_run(run.run_id, process_context.create_request_context())
        run = instance.get_run_by_id(run.run_id)
        try:
            assert launcher.check_run_worker_health(run).status in (WorkerStatus.RUNNING, WorkerStatus.SUCCESS)
        finally:
            assert launcher.terminate(run.run_id)
