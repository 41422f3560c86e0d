"""What docker/ promises and no test of a running image can check here (no Docker on CI): images
run as a non-root user, the trainer image runs what the GPU launchers send, no secret is written
in a file (the instance takes the database password from the environment, resolved as Dagster
resolves it), and the UI is published on loopback unless configured otherwise (resolved as compose
resolves it)."""

import re
from pathlib import Path

import pytest
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
        text = (DOCKER / name).read_text()
        assert not re.search(r"(?i)(secret_access_key|api_key|token)\s*:", text), name


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster.ecs.yaml"])
def test_the_instance_connects_with_the_password_the_environment_holds(name, monkeypatch):
    """Dagster reads the instance file and resolves its storage config as it does at start-up:
    the connection it builds carries whatever password the environment holds (a password written
    in the file would not follow the environment)."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import pg_url_from_config

    for var, value in (("HOST", "db"), ("USER", "dagster"), ("DB", "dagster"), ("PORT", "5432")):
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{var}", value)
    config, _ = dagster_instance_config(str(DOCKER), name)
    urls = []
    for password in ("first-from-env", "second-from-env"):
        monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", password)
        resolved = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
        assert resolved.success, resolved.errors
        urls.append(pg_url_from_config(resolved.value))
    assert urls == [f"postgresql+psycopg2://dagster:{p}@db:5432/dagster" for p in ("first-from-env", "second-from-env")]


def _compose_value(text: str, env: dict[str, str]) -> str:
    """A compose value with its ${VAR:-default} references resolved (python-dotenv's parser, the
    same rule docker compose applies)."""
    from dotenv.variables import parse_variables

    return "".join(atom.resolve(env) for atom in parse_variables(text))


def test_webserver_is_published_on_loopback_unless_configured_otherwise():
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    [port] = compose["services"]["webserver"]["ports"]
    assert _compose_value(port, {}) == "127.0.0.1:3000:3000"
    assert _compose_value(port, {"DAGSTER_WEBSERVER_BIND": "0.0.0.0"}) == "0.0.0.0:3000:3000"
