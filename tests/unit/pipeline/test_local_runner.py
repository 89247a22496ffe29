"""The local runner executes a compiled KFP spec: order, placeholders, outputs, env, failures.

No ``from __future__ import annotations`` here: kfp reads component signatures at runtime and
takes the string ``"str"`` for an artifact type.
"""

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kfp import compiler, dsl, kubernetes

from crashed.adapters.local_lake import LocalLake
from crashed.errors import InputError
from crashed.orchestration_records import new_run_id
from crashed.pipeline.compiled_tasks import load_tasks
from crashed.pipeline.local_runner import (
    OWNER_FILE,
    parse_overrides,
    run_compiled,
    run_workdir,
    sweep_stale_workdirs,
)
from crashed.pipeline.placeholders import Job, PlaceholderError, resolve
from crashed.pipeline.run_summary import RunSummary, StepResult
from crashed.pipeline.step_runners import (
    LOCAL_ENV_WINS,
    Interrupts,
    SubprocessRunner,
    local_command,
)
from crashed.processes import process_start

# Every step runs this: log its label, print a line to stdout and stderr, then write its
# output (a JSON echo of its args and env), or a manifest for "finish".
SCRIPT = r"""
import json, os, pathlib, sys
label, log, out, *rest = sys.argv[1:]
with open(log, "a") as handle:
    handle.write(label + "\n")
print(f"{label} says hi", flush=True)
print(f"{label} warns", file=sys.stderr, flush=True)
if label == "fail":
    sys.exit(3)
if label == "silent":
    sys.exit(0)
names = ("GREETING", "TMPDIR", "GITLAB_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "CRASHED_HOME")
echo = {
    "label": label,
    "args": rest,
    "env": {name: os.environ.get(name) for name in names},
    "tmpdir_exists": os.path.isdir(os.environ.get("TMPDIR") or "/nonexistent"),
}
if label == "finish":
    manifest = pathlib.Path(log).parent / "lake" / "bucket" / "runs" / "manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({
        "artifacts": [{"name": "model.ubj", "uri": "gs://b/m/model.ubj", "sha256": "ab",
                       "md5": "cd", "bytes": 3}],
        "metrics": {"roc_auc": 0.9},
        "gate": {"passed": True},
        "proposal": None,
        "decision": "proposed",
        "upstream": rest,
    }))
    pathlib.Path(out).write_text("gs://bucket/runs/manifest.json")
else:
    pathlib.Path(out).write_text(json.dumps(echo))
"""


def _spec(label: str, log: str, out: str, *values: Any) -> dsl.ContainerSpec:
    return dsl.ContainerSpec(
        image="python:3.11", command=["python", "-c", SCRIPT], args=[label, log, out, *values]
    )


@dsl.container_component
def alpha(log: str, value: str, out: dsl.OutputPath(str)):  # type: ignore[valid-type]
    return _spec("alpha", log, out, value)


@dsl.container_component
def beta(log: str, value: str, out: dsl.OutputPath(str)):  # type: ignore[valid-type]
    return _spec("beta", log, out, value)


@dsl.container_component
def gamma(  # type: ignore[valid-type]
    log: str, left: str, right: str, run_id: str, run_date: str, out: dsl.OutputPath(str)
):
    return _spec("gamma", log, out, left, right, run_id, run_date)


@dsl.container_component
def finish(log: str, prev: str, out: dsl.OutputPath(str)):  # type: ignore[valid-type]
    return _spec("finish", log, out, prev)


@dsl.container_component
def fail(log: str, value: str, out: dsl.OutputPath(str)):  # type: ignore[valid-type]
    return _spec("fail", log, out, value)


@dsl.container_component
def silent(log: str, out: dsl.OutputPath(str)):  # type: ignore[valid-type]
    return _spec("silent", log, out)


@dsl.container_component
def flags(  # type: ignore[valid-type]
    log: str,
    a: str,
    out: dsl.OutputPath(str),
    b: str = None,  # noqa: RUF013 - kfp's optional
):
    return _spec(
        "flags",
        log,
        out,
        dsl.ConcatPlaceholder(["--a=", a, "!"]),
        dsl.IfPresentPlaceholder(input_name="b", then=["--b", b], else_=["--no-b"]),
        dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
    )


# A step that starts a grandchild, says so, then waits; with "stubborn" it ignores SIGTERM.
SLEEPER = r"""
import os, pathlib, signal, subprocess, sys, time
pids, mode = sys.argv[1:3]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["sleep", "300"])
pathlib.Path(pids).write_text(f"{os.getpid()} {child.pid}")
print("ready", flush=True)
time.sleep(300)
"""


@dsl.container_component
def sleeper(pids: str, mode: str, out: dsl.OutputPath(str)):  # type: ignore[valid-type]
    return dsl.ContainerSpec(
        image="python:3.11", command=["python", "-c", SLEEPER], args=[pids, mode, out]
    )


@dsl.pipeline(name="sleepy")
def sleepy(log: str = "", pids: str = "", mode: str = "polite") -> None:
    s = sleeper(pids=pids, mode=mode)
    finish(log=log, prev=s.outputs["out"])


@dsl.pipeline(name="happy")
def happy(log: str = "", word: str = "hello") -> None:
    a = alpha(log=log, value=word)
    b = beta(log=log, value="constant")
    g = gamma(
        log=log,
        left=a.outputs["out"],
        right=b.outputs["out"],
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        run_date=dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
    )
    g.set_env_variable("GREETING", "hi")
    g.set_env_variable("TMPDIR", "/scratch/tmp")
    g.set_env_variable("CRASHED_HOME", "/scratch/home")
    g.set_env_variable("GOOGLE_APPLICATION_CREDENTIALS", "/var/secrets/google/key.json")
    kubernetes.use_secret_as_env(g, "crashed-gitlab", {"token": "GITLAB_TOKEN"})
    kubernetes.use_secret_as_volume(g, "crashed-gcp-sa", mount_path="/var/secrets/google")
    kubernetes.empty_dir_mount(g, volume_name="scratch", mount_path="/scratch")
    finish(log=log, prev=g.outputs["out"])


@dsl.pipeline(name="failing")
def failing(log: str = "") -> None:
    a = alpha(log=log, value="x")
    f = fail(log=log, value=a.outputs["out"])
    finish(log=log, prev=f.outputs["out"])
    beta(log=log, value="independent")


@dsl.pipeline(name="quiet")
def quiet(log: str = "") -> None:
    s = silent(log=log)
    finish(log=log, prev=s.outputs["out"])


@dsl.pipeline(name="flagged")
def flagged(log: str = "") -> None:
    flags(log=log, a="A")
    flags(log=log, a="A", b="B")


def _compile(pipeline: Any, tmp_path: Path) -> Path:
    path = tmp_path / f"{pipeline.name}.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return path


def _run(path: Path, tmp_path: Path, **kwargs: Any) -> tuple[RunSummary, list[str]]:
    lines: list[str] = []
    params = {"log": str(tmp_path / "order.log"), **kwargs.pop("params", {})}
    base = kwargs.pop("base_env", {"PATH": "/usr/bin:/bin", "CRASHED_HOME": "/local/home"})
    runner = SubprocessRunner(base)
    summary = run_compiled(
        path,
        runner,
        lake=LocalLake(tmp_path / "lake"),
        params=params,
        echo=lines.append,
        cwd=tmp_path,
        **kwargs,
    )
    return summary, lines


def _out(summary: RunSummary, task: str) -> dict[str, Any]:
    return json.loads(summary.outputs[task]["out"])


def _order(tmp_path: Path) -> list[str]:
    return (tmp_path / "order.log").read_text().split()


def test_runs_in_order_resolving_placeholders_and_passing_outputs(tmp_path: Path) -> None:
    path = _compile(happy, tmp_path)
    when = dt.datetime(2024, 3, 1, 6, 30, tzinfo=dt.UTC)

    summary, lines = _run(path, tmp_path, run_id="local-test-1", run_date=when)

    assert _order(tmp_path) == ["alpha", "beta", "gamma", "finish"]
    assert summary.status == "succeeded" and summary.failed_step is None
    assert list(summary.steps) == ["alpha", "beta", "gamma", "finish"]
    assert all(s.status == "succeeded" and s.seconds > 0 for s in summary.steps.values())
    gamma_out = _out(summary, "gamma")
    left, right, run_id, run_date = gamma_out["args"]
    assert json.loads(left)["args"] == ["hello"]  # alpha's output, fed through
    assert json.loads(right)["args"] == ["constant"]
    assert (run_id, run_date) == ("local-test-1", "2024-03-01T06:30:00Z")
    assert summary.run_id == "local-test-1" and summary.pipeline == "happy"
    assert "[alpha ] alpha says hi" in lines and "[alpha ] alpha warns" in lines
    assert any(line.startswith("[gamma ] succeeded in") for line in lines)


def test_summary_reads_the_final_manifest(tmp_path: Path) -> None:
    summary, _ = _run(_compile(happy, tmp_path), tmp_path)

    assert summary.manifest == "gs://bucket/runs/manifest.json"  # read through the lake handed in
    assert summary.manifest_error is None
    assert summary.artifacts[0]["name"] == "model.ubj"
    assert summary.metrics == {"roc_auc": 0.9}
    assert summary.gate == {"passed": True}
    assert summary.proposal is None and summary.decision == "proposed"
    assert summary.run_id.startswith("local-")
    as_json = summary.as_dict()
    assert as_json["status"] == "succeeded" and as_json["runner"] == "subprocess"
    assert as_json["steps"]["finish"]["status"] == "succeeded"


def test_pod_env_is_emulated(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin:/bin", "CRASHED_HOME": "/local/home", "GITLAB_TOKEN": "glpat-local"}

    summary, lines = _run(
        _compile(happy, tmp_path), tmp_path, base_env=base, workdir=tmp_path / "w"
    )

    env = _out(summary, "gamma")["env"]
    assert env["GREETING"] == "hi"  # plain env from the executor
    assert env["TMPDIR"] == str(tmp_path / "w" / "steps" / "gamma" / "scratch" / "scratch" / "tmp")
    assert env["GITLAB_TOKEN"] == "glpat-local"  # secretAsEnv from the local env
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] is None  # secret volume not mounted here
    assert env["CRASHED_HOME"] == "/local/home"  # LOCAL_ENV_WINS
    assert "CRASHED_HOME" in LOCAL_ENV_WINS
    assert any("GOOGLE_APPLICATION_CREDENTIALS unset" in line for line in lines)
    alpha_env = _out(summary, "alpha")["env"]
    assert alpha_env["GREETING"] is None  # env is per task


def test_missing_secret_is_unset_and_noted_once(tmp_path: Path) -> None:
    summary, lines = _run(_compile(happy, tmp_path), tmp_path)

    env = _out(summary, "gamma")["env"]
    assert env["GITLAB_TOKEN"] is None
    assert sum("GITLAB_TOKEN unset" in line for line in lines) == 1


def test_failure_stops_dependants_and_names_the_step(tmp_path: Path) -> None:
    summary, lines = _run(_compile(failing, tmp_path), tmp_path)

    assert summary.status == "failed"
    assert summary.failed_step == "fail"
    steps = summary.steps
    assert steps["fail"].status == "failed" and steps["fail"].exit_code == 3
    assert steps["finish"] == StepResult("skipped", reason="fail")
    assert steps["finish"].as_dict() == {"status": "skipped", "seconds": 0.0, "reason": "fail"}
    assert steps["alpha"].status == steps["beta"].status == "succeeded"
    assert "finish" not in _order(tmp_path)  # never started
    assert summary.artifacts == [] and summary.gate is None and summary.manifest is None
    assert any("FAILED (exit 3)" in line for line in lines)


def test_a_step_without_its_output_fails(tmp_path: Path) -> None:
    summary, _ = _run(_compile(quiet, tmp_path), tmp_path)

    assert summary.failed_step == "silent"
    assert summary.steps["silent"] == StepResult(
        "failed", summary.steps["silent"].seconds, 0, "exited 0 but did not write its output 'out'"
    )
    assert summary.steps["finish"] == StepResult("skipped", reason="silent")


def test_concat_ifpresent_and_task_placeholders(tmp_path: Path) -> None:
    summary, _ = _run(_compile(flagged, tmp_path), tmp_path)

    outputs = {name: _out(summary, name)["args"] for name in summary.outputs}
    assert outputs == {
        "flags": ["--a=A!", "--no-b", "flags"],
        "flags-2": ["--a=A!", "--b", "B", "flags-2"],
    }


def test_param_overrides(tmp_path: Path) -> None:
    path = _compile(happy, tmp_path)

    summary, _ = _run(path, tmp_path, params={"word": "bye"})

    assert _out(summary, "alpha")["args"] == ["bye"]
    with pytest.raises(
        InputError, match="unknown pipeline parameter 'wrd'; valid parameters: log, word"
    ):
        _run(path, tmp_path, params={"wrd": "x"})


def test_parse_overrides_validates() -> None:
    declared = {"train_start": "", "force_promotion": "false", "note": ""}

    assert parse_overrides(
        ["train_start=2018-01-01", "force_promotion=TRUE", "note=a=b"], declared
    ) == {"train_start": "2018-01-01", "force_promotion": "true", "note": "a=b"}
    assert parse_overrides(["train_start="], declared) == {"train_start": ""}
    with pytest.raises(InputError, match="'bogus'; valid parameters: force_promotion, note"):
        parse_overrides(["bogus=1"], declared)
    with pytest.raises(InputError, match="ISO date"):
        parse_overrides(["train_start=01/02/2018"], declared)
    assert parse_overrides(["force_promotion=no"], declared) == {"force_promotion": "false"}
    with pytest.raises(InputError, match="expected true or false"):
        parse_overrides(["force_promotion=maybe"], declared)
    with pytest.raises(InputError, match="NAME=VALUE"):
        parse_overrides(["train_start"], declared)


def test_cycles_and_unsupported_placeholders_are_input_errors(tmp_path: Path) -> None:
    container = {"container": {"image": "i", "command": ["true"]}}
    spec = {
        "components": {"comp-a": {"executorLabel": "exec-a"}},
        "deploymentSpec": {"executors": {"exec-a": container}},
        "root": {
            "dag": {
                "tasks": {
                    "a": {"componentRef": {"name": "comp-a"}, "dependentTasks": ["b"]},
                    "b": {"componentRef": {"name": "comp-a"}, "dependentTasks": ["a"]},
                }
            }
        },
    }
    with pytest.raises(InputError, match="cycle"):
        load_tasks(spec, {})
    job = Job(run_id="r", run_date="d", pipeline="p", root=tmp_path)
    with pytest.raises(PlaceholderError, match=r"\{\{\$\.outputs\.output_file\}\}"):
        resolve(["{{$.outputs.output_file}}"], {}, {}, job, "a")


def test_local_command_and_run_id() -> None:
    import sys

    assert local_command(["crashed", "pipelines"]) == [sys.executable, "-m", "crashed", "pipelines"]
    assert local_command(["python3", "-c", "x"]) == [sys.executable, "-c", "x"]
    assert local_command(["sh", "-c", "x"]) == ["sh", "-c", "x"]
    run_id = new_run_id(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    assert (
        run_id.startswith("local-20240102T030405Z-")
        and len(run_id) == len("local-20240102T030405Z-") + 6
    )


def test_docker_runner_runs_a_step_as_its_pod_would(tmp_path: Path) -> None:
    from crashed.pipeline.compiler import load_documents
    from crashed.pipeline.docker_runner import DockerRunner

    key = tmp_path / "sa-key.json"
    key.write_text("{}")
    base = {"PATH": "/usr/bin", "GITLAB_TOKEN": "glpat-secret-value", "HOME": "/root"}
    base["GOOGLE_APPLICATION_CREDENTIALS"] = str(key)
    spec, platform = load_documents(_compile(happy, tmp_path).read_text())
    gamma = next(t for t in load_tasks(spec, platform) if t.name == "gamma")
    runner = DockerRunner(
        "crashed:local", tmp_path / "home", base, repo=tmp_path / "repo", run_label="r1"
    )
    step_dir = tmp_path / "work" / "steps" / "gamma"
    (step_dir / "outputs" / "out").mkdir(parents=True)

    launch = runner.prepare(gamma, ["python", "-c", "pass", "x"], step_dir, tmp_path / "work")

    argv = launch.argv
    image_at = argv.index("crashed:local")
    options, command = argv[:image_at], argv[image_at:]
    assert command == ["crashed:local", "-c", "pass", "x"]
    assert options[options.index("--entrypoint") + 1] == "python"
    pairs = {(a, b) for a, b in itertools.pairwise(options)}
    assert {
        ("--user", "10001:10001"),
        ("--network", "host"),
        ("--name", "crashed-r1-gamma"),
    } <= pairs
    assert "--read-only" in options and "--rm" in options
    assert ("--tmpfs", "/scratch:rw,exec,mode=1777") in pairs  # the emptyDir
    env = [b for a, b in itertools.pairwise(options) if a == "--env"]
    assert "GREETING=hi" in env and "TMPDIR=/scratch/tmp" in env  # verbatim from the spec
    assert f"CRASHED_HOME={(tmp_path / 'home').resolve()}" in env  # the local lake + warehouse
    assert "CRASHED_HOME=/scratch/home" not in env
    assert "GITLAB_TOKEN" in env  # by name: the value comes from the process env
    assert not any("glpat-secret-value" in item for item in argv)
    assert launch.env["GITLAB_TOKEN"] == "glpat-secret-value"
    assert "GOOGLE_APPLICATION_CREDENTIALS=/var/secrets/google/key.json" in env
    mounts = [b for a, b in itertools.pairwise(options) if a == "--mount"]
    assert f"type=bind,src={key.resolve()},dst=/var/secrets/google/key.json,ro" in mounts
    work = tmp_path / "work"
    assert f"type=bind,src={work},dst={work}" in mounts  # output files at the same paths
    assert (step_dir / "outputs" / "out").stat().st_mode & 0o777 == 0o777
    assert launch.notes == []
    assert launch.what == "container crashed-r1-gamma"
    assert launch.stop == (  # on interrupt: stopped by name, and removed if created late
        ("docker", "stop", "--time", "10", "crashed-r1-gamma"),
        ("docker", "rm", "--force", "crashed-r1-gamma"),
    )

    bare = DockerRunner("crashed:local", tmp_path / "home", {"PATH": "/usr/bin"})
    unset = bare.prepare(gamma, ["crashed", "x"], step_dir, tmp_path / "work")
    assert not any(item.startswith("GOOGLE_APPLICATION_CREDENTIALS") for item in unset.argv)
    assert "GITLAB_TOKEN" not in unset.argv
    assert len(unset.notes) == 2
    with pytest.raises(InputError, match="--user"):
        DockerRunner("crashed:local", tmp_path, {}, user="root")


def test_docker_runner_refuses_a_home_its_user_cannot_write(tmp_path: Path) -> None:
    from crashed.pipeline.docker_runner import DockerRunner

    home = tmp_path / "home"
    (home / "lake").mkdir(parents=True)
    home.chmod(0o755)
    other = os.getuid() + 1
    runner = DockerRunner("crashed:local", home, {}, user=f"{other}:{other}")

    with pytest.raises(InputError) as refused:
        runner.check_home()
    assert str(home) in refused.value.message and f"chown -R {other}" in refused.value.message

    home.chmod(0o777)
    (home / "lake").chmod(0o777)
    runner.check_home()  # world-writable: fine


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "signum", "name"),
    [("polite", signal.SIGINT, "SIGINT"), ("stubborn", signal.SIGTERM, "SIGTERM")],
)
def test_a_signal_stops_the_step_group_and_the_run(
    tmp_path: Path, mode: str, signum: int, name: str
) -> None:
    pids = tmp_path / "pids"
    interrupts = Interrupts(grace=1.0)  # a stubborn step is SIGKILLed after this

    def echo(line: str) -> None:
        if line.endswith(" ready"):  # the step runs: signal this process, as Ctrl-C would
            os.kill(os.getpid(), signum)

    with interrupts.installed():
        summary = run_compiled(
            _compile(sleepy, tmp_path),
            SubprocessRunner({"PATH": os.environ["PATH"]}),
            lake=None,
            params={"log": str(tmp_path / "order.log"), "pids": str(pids), "mode": mode},
            echo=echo,
            interrupts=interrupts,
        )

    step, child = (int(pid) for pid in pids.read_text().split())
    assert _gone(step) and _gone(child)  # the whole process group, grandchild included
    assert summary.interrupted == name and summary.status == "failed"
    assert summary.failed_step == "sleeper"
    assert summary.steps["sleeper"].status == "interrupted"
    assert summary.steps["sleeper"].exit_code == (-signal.SIGKILL if mode == "stubborn" else -15)
    assert summary.steps["finish"] == StepResult("skipped", reason="interrupted")
    assert summary.as_dict()["interrupted"] == name
    assert interrupts.exit_code == 128 + signum
    assert interrupts.stopped == [f"step 'sleeper' (process group {step})"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_run_workdir_records_its_owner_and_is_removed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), run_workdir("local-x", tmp_path) as work:
        owner = json.loads((work / OWNER_FILE).read_text())
        assert owner == {
            "pid": os.getpid(),
            "start": process_start(os.getpid()),
            "run_id": "local-x",
        }
        assert work.name.startswith("crashed-run-local-x-")
        raise RuntimeError("the run failed")
    assert list(tmp_path.iterdir()) == []


def test_stale_workdirs_of_dead_owners_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    now = time.time()

    def folder(name: str, owner: dict[str, Any] | None, age: float) -> Path:
        path = tmp_path / name
        path.mkdir()
        if owner is not None:
            (path / OWNER_FILE).write_text(json.dumps(owner))
        os.utime(path, (now - age, now - age))
        return path

    me = {"pid": os.getpid(), "start": process_start(os.getpid())}
    stale = folder("crashed-run-a-1", {"pid": dead.pid, "start": "1"}, 7200)
    recycled = folder("crashed-run-b-1", {**me, "start": "-1"}, 7200)  # pid reused since
    alive = folder("crashed-run-c-1", me, 7200)
    fresh = folder("crashed-run-d-1", {"pid": dead.pid, "start": "1"}, 60)
    legacy = folder("crashed-local-20240101T000000Z-abc-xyz", None, 7200)
    setting_up = folder("crashed-run-e-1", None, 7200)  # no record: counted as in use
    other = folder("crashed-deploy-x", None, 7200)

    removed = sweep_stale_workdirs(tmp_path, now=now)

    assert sorted(removed) == sorted([stale, recycled, legacy])
    assert {p.name for p in tmp_path.iterdir()} == {
        alive.name,
        fresh.name,
        setting_up.name,
        other.name,
    }
    assert sweep_stale_workdirs(tmp_path / "missing") == []
