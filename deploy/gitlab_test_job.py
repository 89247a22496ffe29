"""Run ``.gitlab-ci.yml``'s ``test`` job the way GitLab's Docker executor would, locally.

    python deploy/gitlab_test_job.py --image crashed-ci:local \\
        --service-image crashed-bigquery:local [--job test] [--keep]

Reads the job from ``.gitlab-ci.yml`` (its image, services, variables, before_script and
script), clones HEAD into a temporary folder (a clean checkout: no ``../shared`` beside it, no
untracked files), mounts it at ``/builds/crashed`` in the job container and in every service
container, starts the services, runs the script with ``sh -e`` and exits with its status.

Differences from GitLab, forced by a bridge-less Docker: every container uses the host network,
so a service's alias resolves to 127.0.0.1 (``--add-host``) and its port is a free one
(``BIGQUERY_EMULATOR_PORT`` and the port in ``BIGQUERY_EMULATOR_URL`` are rewritten). Images
named ``$CI_REGISTRY_IMAGE/<name>:…`` in the file are replaced by the local tags given.
Containers are removed by id, the clone is deleted (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILDS = "/builds/crashed"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def expand(value: str, variables: dict[str, str]) -> str:
    """GitLab's ``$VAR`` / ``${VAR}`` expansion (unknown variables become empty)."""
    return re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: variables.get(m.group(1), ""), value
    )


def local_image(name: str, images: dict[str, str]) -> str:
    """``$CI_REGISTRY_IMAGE/ci:$CI_COMMIT_SHA`` → the local tag given for ``ci``."""
    match = re.fullmatch(r"\$CI_REGISTRY_IMAGE(?:/([\w.-]+))?:\S+", name)
    if not match:
        raise SystemExit(f"gitlab_test_job: image {name!r} is not one of this project's images")
    key = match.group(1) or "runtime"
    if key not in images:
        raise SystemExit(f"gitlab_test_job: no local image given for {key!r} ({name})")
    return images[key]


def docker(*args: str, capture: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=capture, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or "").strip()[-2000:] if capture else ""
        raise SystemExit(f"gitlab_test_job: docker {args[0]} failed: {detail}")
    return (done.stdout or "").strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="test")
    parser.add_argument("--image", required=True, help="local tag of $CI_REGISTRY_IMAGE/ci")
    parser.add_argument(
        "--service-image",
        action="append",
        default=[],
        help="local tag of a service image: NAME=TAG, or TAG for bigquery-emulator",
    )
    parser.add_argument("--keep", action="store_true", help="keep the clone (debugging)")
    parser.add_argument(
        "--source", default=str(ROOT), help="repository to clone HEAD of (default: this one)"
    )
    args = parser.parse_args(argv)

    config = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    job = config[args.job]
    images = {"ci": args.image}
    for entry in args.service_image:
        name, _, tag = entry.rpartition("=")
        images[name or "bigquery-emulator"] = tag

    commit = subprocess.run(
        ["git", "-C", args.source, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    variables = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": BUILDS,
        "CI_COMMIT_SHA": commit,
        "CI_JOB_NAME": args.job,
        "CI_REGISTRY_IMAGE": "$CI_REGISTRY_IMAGE",  # kept symbolic; images are mapped below
    }
    for source in (config.get("variables") or {}, job.get("variables") or {}):
        for key, value in source.items():
            value = value["value"] if isinstance(value, dict) else str(value)
            variables[key] = expand(value, variables)

    image = job["image"]["name"] if isinstance(job["image"], dict) else job["image"]
    job_image = local_image(image, images)
    work = Path(tempfile.mkdtemp(prefix="crashed-gitlab-job-"))
    checkout = work / "crashed"
    containers: list[str] = []
    hosts: list[str] = []
    try:
        subprocess.run(
            ["git", "clone", "-q", "--no-hardlinks", args.source, str(checkout)], check=True
        )
        subprocess.run(["git", "-C", str(checkout), "checkout", "-q", commit], check=True)
        for service in job.get("services") or []:
            service = service if isinstance(service, dict) else {"name": service}
            alias = service.get("alias") or service["name"].rsplit("/", 1)[-1].split(":")[0]
            port = free_port()
            url = variables.get("BIGQUERY_EMULATOR_URL")
            if url and urlsplit(url).hostname == alias:
                parts = urlsplit(url)
                variables["BIGQUERY_EMULATOR_URL"] = urlunsplit(
                    parts._replace(netloc=f"{alias}:{port}")
                )
            env = {**variables, "BIGQUERY_EMULATOR_PORT": str(port)}
            containers.append(
                docker(
                    "run",
                    "-d",
                    "--network",
                    "host",
                    "-v",
                    f"{checkout}:{BUILDS}",
                    *[a for k, v in env.items() for a in ("-e", f"{k}={v}")],
                    local_image(service["name"], images),
                )
            )
            hosts += ["--add-host", f"{alias}:127.0.0.1"]
            print(f"gitlab_test_job: service {alias} on port {port}", flush=True)

        script = [*(job.get("before_script") or []), *job["script"]]
        print(f"gitlab_test_job: job {args.job!r} in {job_image}: {' && '.join(script)}")
        done = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "host",
                *hosts,
                "-v",
                f"{checkout}:{BUILDS}",
                "-w",
                BUILDS,
                *[a for k, v in variables.items() for a in ("-e", f"{k}={v}")],
                job_image,
                "sh",
                "-ec",
                "\n".join(script),
            ],
            check=False,
        )
        print(f"gitlab_test_job: job {args.job!r} exited {done.returncode}", flush=True)
        return done.returncode
    finally:
        for container in containers:
            if os.environ.get("GITLAB_TEST_JOB_SERVICE_LOGS"):
                subprocess.run(["docker", "logs", "--tail", "50", container], check=False)
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"gitlab_test_job: kept {checkout}")


if __name__ == "__main__":
    sys.exit(main())
