"""`dagster dev` serves the code location: the UI's GraphQL lists the asset graph, job, schedule, sensor.

Background processes here ignore SIGINT/SIGTERM, so the child restores default handlers, runs in
its own process group, and is stopped by group.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pixel_assets_tests.helpers import free_port

REPO = Path(__file__).resolve().parents[1]
QUERY = """{
  assetNodes { assetKey { path } }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    jobs { name } schedules { name } sensors { name } } } }
}"""



def _restore_signals_new_group() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()


@pytest.fixture
def dagster_dev(tmp_path):
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PIXEL_DATA_ROOT": str(tmp_path / "root")}
    log = open(tmp_path / "dagster_dev.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_restore_signals_new_group,
    )
    try:
        yield f"http://127.0.0.1:{port}/graphql", proc, tmp_path / "dagster_dev.log"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(url, data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def test_dagster_dev_serves_the_asset_graph(dagster_dev):
    url, proc, log = dagster_dev
    deadline, data = time.monotonic() + 180, None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            data = _graphql(url, QUERY)["data"]
            if data["assetNodes"]:
                break
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(2)
    assert data and data["assetNodes"], f"dagster dev did not serve the graph: {log.read_text()[-2000:]}"
    keys = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
    assert {"compiled_dataset", "normalized/cptsd", "scrubbed/cptsd", "verification_report"} <= keys
    repo = data["repositoriesOrError"]["nodes"][0]
    assert "compile_dataset" in {j["name"] for j in repo["jobs"]}
    assert "nightly_compile" in {s["name"] for s in repo["schedules"]}
    assert "source_change_sensor" in {s["name"] for s in repo["sensors"]}
