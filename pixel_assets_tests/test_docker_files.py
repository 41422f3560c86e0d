"""What docker/ promises and no test of a running image can check here (no Docker on CI): images
run as a non-root user, the trainer image runs what the GPU launchers send, no secret is written
in a file, and the UI is published on loopback unless configured otherwise."""

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    text = (DOCKER / dockerfile).read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_images_run_as_a_non_root_user():
    for dockerfile in ("Dockerfile", "Dockerfile.trainer"):
        users = [arg for op, arg in _instructions(dockerfile) if op == "USER"]
        assert users and users[-1] not in ("root", "0"), dockerfile


def test_trainer_image_runs_what_the_gpu_launchers_send():
    ops = _instructions("Dockerfile.trainer")
    assert ops[0][0] == "FROM" and ops[0][1].startswith("nvidia/cuda:")
    assert not [arg for op, arg in ops if op == "ENTRYPOINT"]  # K8s args / ECS command replace CMD only
    assert [arg for op, arg in ops if op == "CMD"][-1] == '["dagster", "api", "execute_run"]'
    assert any("pip install -e ." in arg for op, arg in ops if op == "RUN")  # the package itself


def test_no_secret_in_the_files():
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password.startswith("${DAGSTER_POSTGRES_PASSWORD:?")  # required from the environment
    assert compose["x-dagster-env"]["DAGSTER_POSTGRES_PASSWORD"].startswith("${")
    for name in ("dagster.yaml", "dagster.ecs.yaml"):
        config = yaml.safe_load((DOCKER / name).read_text())
        assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_POSTGRES_PASSWORD"}
        text = (DOCKER / name).read_text()
        assert not re.search(r"(?i)(secret_access_key|api_key|token)\s*:", text), name


def test_webserver_is_published_on_loopback_by_default():
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    [port] = compose["services"]["webserver"]["ports"]
    assert port == "${DAGSTER_WEBSERVER_BIND:-127.0.0.1}:3000:3000"
