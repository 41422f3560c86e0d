"""Test helpers: a workspace on launcher_jobs.py (its own code server process, as in production)
and runs created from it the way the webserver creates them."""

from contextlib import contextmanager
from pathlib import Path

from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import PythonFileTarget

JOBS_FILE = Path(__file__).with_name("launcher_jobs.py")
LOCATION = "launcher_jobs"


@contextmanager
def jobs_workspace(instance):
    target = PythonFileTarget(python_file=str(JOBS_FILE), attribute="defs",
                              working_directory=str(JOBS_FILE.parents[1]), location_name=LOCATION)
    with WorkspaceProcessContext(instance, target) as process_context:
        yield process_context


def create_run(instance, process_context, job_name: str, *, barrier_dir: str = "", tags=None):
    """A NOT_STARTED run of job_name with its remote and code origins (what the launchers need)."""
    from pixel_assets_tests import launcher_jobs

    request = process_context.create_request_context()
    location = request.get_code_location(LOCATION)
    repo = next(iter(location.get_repositories().values()))
    remote_job = repo.get_full_job(job_name)
    job_def = getattr(launcher_jobs, job_name)
    return instance.create_run_for_job(
        job_def=job_def,
        run_config={"ops": {"hold": {"config": {"barrier_dir": barrier_dir}}}},
        tags={**job_def.tags, **(tags or {})},
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
    )


def stop_code_servers(timeout: float = 15) -> None:
    """Wait for this process's `dagster api grpc` children (the workspace's code servers) to exit,
    then kill what is left. A code server holding a Postgres instance can outlive its workspace
    (its event watcher waits on the database), so this runs before the database stops."""
    import psutil

    servers = [p for p in psutil.Process().children(recursive=True)
               if "grpc" in p.cmdline() and "api" in p.cmdline()]
    _, alive = psutil.wait_procs(servers, timeout=timeout)
    for process in alive:
        process.kill()
    psutil.wait_procs(alive, timeout=timeout)
