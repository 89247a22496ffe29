"""Each compiled step as a container of the real image, as its pod would run it.

``docker run`` (the CLI; no docker-py needed) per task with:

* the image's entry point set to the task's ``command[0]`` and the rest of the resolved
  command + args after the image (the image is ``--image``, else the compiled executor's);
* the executor's ``env`` from the compiled file, verbatim — except ``CRASHED_HOME``, which is
  the local home (lake + warehouse) bind-mounted read-write at the same path;
* each ``emptyDir`` mount a tmpfs at its mount path (``/scratch``), ``/tmp`` a tmpfs;
* ``secretAsEnv`` variables passed by name from the local environment when set (their values
  never appear on a command line), else unset; a Secret volume is not mounted — an env var
  pointing into it is set only when the same variable names a local file, which is then
  mounted read-only at that path;
* uid 10001 (the image's user), a read-only root filesystem, ``--network host`` (the local
  emulators and fakes listen on 127.0.0.1), ``--rm``;
* the run's work folder (output files) bind-mounted at the same path, so the output-file
  placeholders resolve identically inside and out; the local repository likewise when
  ``repo`` is given (the local Git host proposes into it).

The container's exit code is the step's (``docker run`` returns it), so a failing step fails.
When the run is interrupted the container is stopped by name (``docker stop``, then
``docker rm --force`` for one created after its client went away), besides the ``docker run``
client's process group.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from crashed.errors import InputError, ServiceError
from crashed.pipeline.compiled_tasks import Task
from crashed.pipeline.step_runners import LOCAL_ENV_WINS, STOP_GRACE, Launch, inside

DEFAULT_USER = "10001:10001"
_USER = re.compile(r"^\d+(:\d+)?$")


class DockerRunner:
    """Runs each step as ``docker run`` of ``image`` (see the module docstring)."""

    name = "docker"

    def __init__(
        self,
        image: str,
        home: Path,
        base_env: Mapping[str, str],
        *,
        repo: Path | None = None,
        user: str = DEFAULT_USER,
        docker: str = "docker",
        run_label: str = "",
    ) -> None:
        if not image:
            raise InputError("--image: name the image to run every step in")
        if not _USER.match(user):
            raise InputError(f"--user {user!r}: expected UID or UID:GID")
        self.image = image
        self.home = Path(home).resolve()
        self.base_env = dict(base_env)
        self.repo = Path(repo).resolve() if repo else None
        self.user = user
        self.docker = docker
        self.run_label = run_label

    def check(self) -> None:
        """The daemon answers, the image is there, and the container user can write the home."""
        try:
            done = subprocess.run(
                [self.docker, "image", "inspect", "--format", "{{.Id}}", self.image],
                capture_output=True,
                text=True,
                timeout=60,
                env=self.base_env,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ServiceError(f"cannot run {self.docker}: {error}") from None
        if done.returncode != 0:
            reason = (done.stderr or done.stdout).strip().splitlines()
            text = reason[-1] if reason else f"exit {done.returncode}"
            if "daemon" in text.lower():
                raise ServiceError(f"no Docker daemon: {text}")
            raise InputError(f"image {self.image!r} not found locally ({text}); build it first")
        self.check_home()

    def check_home(self) -> None:
        """The container user can write the home (lake, warehouse): else one clear line."""
        uid = int(self.user.split(":")[0])
        for path in (self.home, self.home / "lake", self.home / "warehouse.duckdb"):
            if not path.exists():
                continue
            info = path.stat()
            if info.st_uid != uid and not info.st_mode & 0o002:
                raise InputError(
                    f"{path}: the container user {uid} cannot write it (owner uid "
                    f"{info.st_uid}); chown -R {uid} {self.home}, or pass --user "
                    f"{info.st_uid}:{info.st_gid}"
                )

    def prepare(self, task: Task, argv: list[str], step_dir: Path, job_root: Path) -> Launch:
        env = dict(self.base_env)
        notes: list[str] = []
        _open_up(job_root, step_dir)
        name = container_name(self.run_label, task.name)
        args = [self.docker, "run", "--rm", "--name", name]
        args += ["--user", self.user, "--read-only", "--network", "host"]
        args += ["--tmpfs", "/tmp:rw,exec,mode=1777"]
        for _volume, mount in task.empty_dirs:
            args += ["--tmpfs", f"{mount}:rw,exec,mode=1777"]
        args += ["--mount", f"type=bind,src={job_root},dst={job_root}"]
        args += ["--mount", f"type=bind,src={self.home},dst={self.home}"]
        args += ["--env", f"CRASHED_HOME={self.home}"]
        if self.repo is not None:
            args += ["--mount", f"type=bind,src={self.repo},dst={self.repo}"]
            args += ["--env", f"CRASHED_REPO={self.repo}"]
            args += ["--env", "GIT_CONFIG_COUNT=1", "--env", "GIT_CONFIG_KEY_0=safe.directory"]
            args += ["--env", "GIT_CONFIG_VALUE_0=*"]
        for variable, value in sorted(task.env.items()):
            if variable in LOCAL_ENV_WINS:
                continue
            secret = next((s for s, m in task.secret_volumes if inside(value, m)), None)
            if secret is not None:
                local = self.base_env.get(variable, "")
                if local and Path(local).is_file():
                    args += ["--mount", f"type=bind,src={Path(local).resolve()},dst={value},ro"]
                else:
                    notes.append(f"{variable} unset (Secret volume {secret} is not mounted)")
                    continue
            args += ["--env", f"{variable}={value}"]
        for variable, secret, key in task.secret_env:
            if self.base_env.get(variable):
                args += ["--env", variable]  # the value comes from this process's env
            else:
                notes.append(f"{variable} unset (Secret {secret}/{key} is not in the local env)")
        args += ["--entrypoint", argv[0], self.image or task.image, *argv[1:]]
        stop = (
            (self.docker, "stop", "--time", str(int(STOP_GRACE)), name),
            (self.docker, "rm", "--force", name),
        )
        return Launch(args, env, notes, stop=stop, what=f"container {name}")


def container_name(run_label: str, task: str) -> str:
    """The step's container name: ``crashed-<run id>-<task>`` (how it is stopped by name)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"crashed-{run_label or 'run'}-{task}"[:120])


def _open_up(job_root: Path, step_dir: Path) -> None:
    """Let the container user write this run's own output folders (``mkdtemp`` makes 0700)."""
    for folder in (job_root, step_dir.parent, step_dir, *step_dir.rglob("*")):
        if folder.is_dir():
            os.chmod(folder, 0o777)
