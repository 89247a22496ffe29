"""The compiled KFP spec: container executors, pod config, secrets, determinism, metadata."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from crashed.cli import cli
from crashed.errors import ConfigError, InputError
from crashed.pipeline import dag
from crashed.pipeline.compiler import (
    CompiledPipeline,
    compile_pipeline,
    kfp_cron,
    read_compiled,
    read_metadata,
)
from crashed.pipeline.spec import CRASHED_PIPELINE, PIPELINES, OpSpec, PipelineSpec
from crashed.settings import Settings

IMAGE = "registry.example.com/crashed/crashed:0123abcd"
TOKEN = "glpat-NeverInTheYaml-0123456789"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    return Settings(
        _env_file=None,
        crashed_platform="gcp",
        crashed_image=IMAGE,
        crashed_home=tmp_path / "home",
        gitlab_project="crashed-group/crashed",
        lake_bucket="crashed-lake-test",
    )


@pytest.fixture
def compiled(settings: Settings, tmp_path: Path) -> CompiledPipeline:
    return compile_pipeline(CRASHED_PIPELINE, settings, tmp_path / "pipeline.yaml")


def _documents(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    pipeline_spec, platform_spec = yaml.safe_load_all(path.read_text())
    return pipeline_spec, platform_spec


def test_every_executor_runs_the_image_with_run_op(compiled: CompiledPipeline) -> None:
    pipeline_spec, _ = _documents(compiled.path)
    executors = pipeline_spec["deploymentSpec"]["executors"]

    assert sorted(executors) == sorted(f"exec-{op.name}" for op in CRASHED_PIPELINE.ops)
    for op in CRASHED_PIPELINE.ops:
        container = executors[f"exec-{op.name}"]["container"]
        assert container["image"] == IMAGE
        assert container["command"] == ["crashed"]
        args = container["args"]
        assert args[:4] == ["pipelines", "crashed_pipeline", "run-op", op.name]
        options = dict(zip(args[4::2], args[5::2], strict=True))
        assert options == {
            **{
                f"--{n.replace('_', '-')}": f"{{{{$.inputs.parameters['{n}']}}}}" for n in op.inputs
            },
            "--output-file": "{{$.outputs.parameters['manifest'].output_file}}",
        }


def test_tasks_wire_parameters_placeholders_and_upstream_manifests(
    compiled: CompiledPipeline,
) -> None:
    pipeline_spec, _ = _documents(compiled.path)
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    declared = pipeline_spec["root"]["inputDefinitions"]["parameters"]

    assert {k: v["defaultValue"] for k, v in declared.items()} == CRASHED_PIPELINE.parameters
    for op in CRASHED_PIPELINE.ops:
        task = tasks[op.name]
        inputs = task["inputs"]["parameters"]
        assert inputs["run_id"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
        assert inputs["run_date"] == {
            "runtimeValue": {"constant": "{{$.pipeline_job_create_time_utc}}"}
        }
        for name in op.params:
            assert inputs[name] == {"componentInputParameter": name}
        for name in op.upstream:
            assert inputs[name] == {
                "taskOutputParameter": {"outputParameterKey": "manifest", "producerTask": name}
            }
        assert sorted(task.get("dependentTasks", [])) == sorted(op.upstream)
        assert task["cachingOptions"] == {}  # caching off (enableCache absent = false)


def test_pod_env_secrets_volumes_and_resources(
    compiled: CompiledPipeline, settings: Settings
) -> None:
    pipeline_spec, platform_spec = _documents(compiled.path)
    executors = pipeline_spec["deploymentSpec"]["executors"]
    k8s = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tasks = pipeline_spec["root"]["dag"]["tasks"]

    for op in CRASHED_PIPELINE.ops:
        container = executors[f"exec-{op.name}"]["container"]
        env = {item["name"]: item.get("value", "") for item in container["env"]}  # "" omitted
        assert settings.pod_env().items() <= env.items()
        assert env["TMPDIR"] == env["CRASHED_HOME"] == "/scratch"
        assert env["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/secrets/google/key.json"
        assert "GITLAB_TOKEN" not in env
        assert container["resources"]["resourceCpuRequest"]
        assert container["resources"]["resourceMemoryRequest"]

        pod = k8s[f"exec-{op.name}"]
        assert pod["secretAsEnv"] == [
            {
                "keyToEnv": [{"envVar": "GITLAB_TOKEN", "secretKey": "token"}],
                "optional": False,
                "secretName": "crashed-gitlab",
                "secretNameParameter": {"runtimeValue": {"constant": "crashed-gitlab"}},
            }
        ]
        (volume,) = pod["secretAsVolume"]
        assert (volume["secretName"], volume["mountPath"]) == (
            "crashed-gcp-sa",
            dag.GCP_SECRET_MOUNT,
        )
        (scratch,) = pod["emptyDirMounts"]
        assert (scratch["volumeName"], scratch["mountPath"]) == ("scratch", "/scratch")
        assert pod["podMetadata"]["labels"]["crashed/op"] == op.name

    assert tasks["extract"]["retryPolicy"]["maxRetryCount"] == 2
    assert "retryPolicy" not in tasks["validate"]  # a data verdict is not retried


def test_no_secret_value_in_the_file(compiled: CompiledPipeline, settings: Settings) -> None:
    assert settings.gitlab_token is not None
    assert settings.gitlab_token.get_secret_value() == TOKEN
    assert TOKEN not in compiled.path.read_text()


def test_refuses_to_write_a_file_containing_a_secret(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaky = dag.container_env(settings) | {"LEAK": TOKEN}
    monkeypatch.setattr(dag, "container_env", lambda _settings: leaky)
    output = tmp_path / "leaky.yaml"

    with pytest.raises(ConfigError, match="GITLAB_TOKEN"):
        compile_pipeline(CRASHED_PIPELINE, settings, output)

    assert not output.exists()
    assert not list(tmp_path.glob(".leaky.yaml.*"))  # no temp file left behind


def test_compiling_is_deterministic_and_the_hash_is_the_version(
    compiled: CompiledPipeline, settings: Settings, tmp_path: Path
) -> None:
    again = compile_pipeline(CRASHED_PIPELINE, settings, tmp_path / "again.yaml")
    other = compile_pipeline(
        CRASHED_PIPELINE,
        settings.model_copy(update={"crashed_image": IMAGE + "-2"}),
        tmp_path / "other.yaml",
    )

    assert compiled.path.read_bytes() == again.path.read_bytes()
    assert compiled.version == again.version == compiled.sha256[:12]
    assert len(compiled.version) == 12 and int(compiled.version, 16) >= 0
    assert other.version != compiled.version


def test_deterministic_across_interpreters(compiled: CompiledPipeline, tmp_path: Path) -> None:
    """A fresh process with another hash seed compiles the same bytes."""
    output = tmp_path / "fresh.yaml"
    code = (
        "import sys; from pathlib import Path; from crashed.settings import Settings; "
        "from crashed.pipeline.compiler import compile_pipeline; "
        "from crashed.pipeline.spec import CRASHED_PIPELINE; "
        f"s = Settings(_env_file=None, crashed_platform='gcp', crashed_image={IMAGE!r}, "
        "gitlab_project='crashed-group/crashed', lake_bucket='crashed-lake-test'); "
        "print(compile_pipeline(CRASHED_PIPELINE, s, Path(sys.argv[1])).version)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    env.pop("GITLAB_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", code, str(output)], env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == compiled.version
    assert output.read_bytes() == compiled.path.read_bytes()


def test_schedule_and_experiment_are_readable_back(compiled: CompiledPipeline) -> None:
    pipeline_spec, _ = _documents(compiled.path)
    back = read_compiled(compiled.path)

    assert read_metadata(pipeline_spec) == {
        "pipeline": "crashed_pipeline",
        "schedule": CRASHED_PIPELINE.schedule,
        "experiment": CRASHED_PIPELINE.experiment,
    }
    assert back == compiled
    assert (back.schedule, back.experiment, back.kfp_cron) == (
        "0 0 * * *",
        "crashed",
        "0 0 0 * * *",
    )
    assert back.parameters == CRASHED_PIPELINE.parameters
    assert pipeline_spec["pipelineInfo"]["name"] == "crashed-pipeline"
    assert pipeline_spec["pipelineInfo"]["displayName"] == "crashed_pipeline"


def test_kfp_cron() -> None:
    assert kfp_cron("0 0 * * *") == "0 0 0 * * *"
    assert kfp_cron("30 2 * * 1-5") == "0 30 2 * * 1-5"
    assert kfp_cron("15 0 0 * * *") == "15 0 0 * * *"
    with pytest.raises(InputError):
        kfp_cron("@daily")


def test_a_bad_spec_names_the_op(settings: Settings, tmp_path: Path) -> None:
    bad = dataclasses.replace(
        CRASHED_PIPELINE, ops=(*CRASHED_PIPELINE.ops, OpSpec("report", "x", params=("nope",)))
    )
    with pytest.raises(ValueError, match=r"'report'.*'nope'"):
        compile_pipeline(bad, settings, tmp_path / "bad.yaml")
    disordered = dataclasses.replace(CRASHED_PIPELINE, ops=tuple(reversed(CRASHED_PIPELINE.ops)))
    with pytest.raises(ValueError, match="does not precede"):
        compile_pipeline(disordered, settings, tmp_path / "bad.yaml")


def test_the_dag_follows_the_spec(settings: Settings, tmp_path: Path) -> None:
    small = PipelineSpec(
        name="tiny_pipeline",
        description="two ops",
        parameters={"when": "x"},
        schedule="5 4 * * *",
        experiment="tiny",
        ops=(
            OpSpec("first", "one", params=("when",)),
            OpSpec("second", "two", upstream=("first",)),
        ),
    )

    compiled = compile_pipeline(small, settings, tmp_path / "tiny.yaml")

    pipeline_spec, _ = _documents(compiled.path)
    args = pipeline_spec["deploymentSpec"]["executors"]["exec-second"]["container"]["args"]
    assert args[:4] == ["pipelines", "tiny_pipeline", "run-op", "second"]
    assert "--first" in args
    assert (compiled.name, compiled.experiment, compiled.kfp_cron) == (
        "tiny_pipeline",
        "tiny",
        "0 5 4 * * *",
    )


def test_cli_compile_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRASHED_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRASHED_IMAGE", IMAGE)
    output = tmp_path / "out" / "p.yaml"
    runner = CliRunner()

    compiled = runner.invoke(cli, ["pipelines", "crashed_pipeline", "compile", "-o", str(output)])
    listing = runner.invoke(cli, ["pipelines", "list", "--json"])

    assert compiled.exit_code == 0, compiled.output
    assert read_compiled(output).version in compiled.output
    assert listing.exit_code == 0, listing.output
    items = {item["name"]: item for item in json.loads(listing.output)}
    assert set(items) == set(PIPELINES)
    item = items["crashed_pipeline"]
    assert item["kfp_cron"] == "0 0 0 * * *"
    assert [op["name"] for op in item["ops"]] == [op.name for op in CRASHED_PIPELINE.ops]
