"""The data job's executor is chosen by PIXEL_DATA_EXECUTOR when the code location loads: the
multiprocess default, or dagster-k8s's k8s_job_executor (one pod per step) with the image,
namespace and step sizing resolved from the environment. Each case loads the code location in a
fresh interpreter, as a code server would."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import json
from pixel_assets.definitions import defs
executor = defs().resolve_job_def("compile_dataset").executor_def
out = {"name": executor.name}
if executor.name == "k8s_data_steps":
    result = executor.config_schema.resolve_config({})
    out["ok"] = result.success
    if result.success:
        value = result.value["config"]
        out.update(image=value["job_image"], namespace=value["job_namespace"], max_concurrent=value["max_concurrent"],
                   resources=value["step_k8s_config"]["container_config"]["resources"])
print(json.dumps(out))
"""


def _load(**env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PIXEL_DATA_", "PIXEL_K8S_"))}
    return subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**full, "PYTHONPATH": str(REPO), **env})


def test_default_is_the_multiprocess_executor_and_k8s_is_selected_by_configuration():
    default = _load()
    assert default.returncode == 0, default.stderr[-2000:]
    assert json.loads(default.stdout.splitlines()[-1])["name"] == "multi_or_in_process_executor"

    k8s = _load(PIXEL_DATA_EXECUTOR="k8s", PIXEL_DATA_IMAGE="registry.example/pixel-code:1",
                PIXEL_K8S_NAMESPACE="pixel-data", PIXEL_K8S_SERVICE_ACCOUNT="pixel-runner", PIXEL_K8S_MAX_CONCURRENT="40")
    assert k8s.returncode == 0, k8s.stderr[-2000:]
    out = json.loads(k8s.stdout.splitlines()[-1])
    assert out["name"] == "k8s_data_steps" and out["ok"]
    assert (out["image"], out["namespace"], out["max_concurrent"]) == ("registry.example/pixel-code:1", "pixel-data", 40)
    assert out["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}


def test_unknown_executor_fails_naming_the_variable():
    bad = _load(PIXEL_DATA_EXECUTOR="celery")
    assert bad.returncode != 0
    assert "PIXEL_DATA_EXECUTOR must be one of multiprocess, k8s, not 'celery'" in bad.stderr
