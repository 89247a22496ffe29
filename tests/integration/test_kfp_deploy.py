"""deploy-prod against the fake KFP API with the real ``kfp.Client``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from tests.servers.procs import free_port

from crashed.adapters.kfp_orchestrator import KfpOrchestrator
from crashed.cli import cli
from crashed.errors import NotFoundError, ServiceError
from crashed.pipeline.compiler import CompiledPipeline, compile_pipeline
from crashed.pipeline.spec import CRASHED_PIPELINE, PipelineSpec
from crashed.settings import Settings

if TYPE_CHECKING:
    from tests.integration.kfp_fixtures import FakeKfpControl


PROD = "crashed_pipeline - prod"


def _settings(tmp_path: Path, image: str = "registry.example.com/crashed:1") -> Settings:
    return Settings(_env_file=None, crashed_image=image, crashed_home=tmp_path / "home")


def _compile(
    tmp_path: Path, image: str = "registry.example.com/crashed:1", spec: PipelineSpec | None = None
) -> CompiledPipeline:
    output = tmp_path / image.rsplit(":", 1)[-1] / "pipeline.yaml"
    return compile_pipeline(spec or CRASHED_PIPELINE, _settings(tmp_path, image), output)


def _orchestrator(fake: FakeKfpControl) -> KfpOrchestrator:
    return KfpOrchestrator(fake.url, namespace="crashed")


def _enabled(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in state["recurring_runs"] if r["mode"] == "ENABLE"]


def test_deploy_twice_creates_once(kfp_fake: FakeKfpControl, tmp_path: Path) -> None:
    compiled = _compile(tmp_path)

    first = _orchestrator(kfp_fake).deploy(compiled)

    assert first.changed
    assert [a.verb for a in first.actions] == [
        "create-pipeline",
        "upload-version",
        "create-experiment",
        "create-recurring-run",
    ]
    state = kfp_fake.state()
    assert [p["display_name"] for p in state["pipelines"]] == [PROD]
    assert [v["name"] for v in state["versions"]] == [compiled.version]
    assert [e["display_name"] for e in state["experiments"]] == ["crashed"]
    (run,) = state["recurring_runs"]
    assert run["mode"] == "ENABLE"
    assert run["trigger"]["cron_schedule"]["cron"] == "0 0 0 * * *"  # KFP: seconds first
    assert run["max_concurrency"] == "1"
    assert run["no_catchup"] is True
    assert run["display_name"] == f"{PROD} @ {compiled.version}"
    assert run["pipeline_version_reference"] == {
        "pipeline_id": state["pipelines"][0]["pipeline_id"],
        "pipeline_version_id": state["versions"][0]["pipeline_version_id"],
    }
    assert run["experiment_id"] == state["experiments"][0]["experiment_id"]
    mutations = len(state["log"])

    second = _orchestrator(kfp_fake).deploy(_compile(tmp_path))

    assert not second.changed
    assert second.actions == []
    assert second.recurring_run_id == run["recurring_run_id"]
    assert len(kfp_fake.mutations()) == mutations  # uploaded and created nothing


def test_changed_spec_replaces_the_recurring_run(kfp_fake: FakeKfpControl, tmp_path: Path) -> None:
    old = _compile(tmp_path, "registry.example.com/crashed:1")
    _orchestrator(kfp_fake).deploy(old)
    old_run = kfp_fake.state()["recurring_runs"][0]
    new = _compile(tmp_path, "registry.example.com/crashed:2")
    assert new.version != old.version

    result = _orchestrator(kfp_fake).deploy(new)

    assert [a.verb for a in result.actions] == [
        "upload-version",
        "create-recurring-run",
        "disable-recurring-run",
        "delete-recurring-run",
    ]
    state = kfp_fake.state()
    assert len(state["pipelines"]) == 1  # the pipeline and the old version are kept
    assert sorted(v["name"] for v in state["versions"]) == sorted([old.version, new.version])
    (run,) = state["recurring_runs"]
    assert run["display_name"] == f"{PROD} @ {new.version}"
    assert run["mode"] == "ENABLE"
    calls = [(m["method"], m["path"]) for m in state["log"]]
    rid = old_run["recurring_run_id"]
    disable = calls.index(("POST", f"/apis/v2beta1/recurringruns/{rid}:disable"))
    delete = calls.index(("DELETE", f"/apis/v2beta1/recurringruns/{rid}"))
    create_new = max(i for i, c in enumerate(calls) if c == ("POST", "/apis/v2beta1/recurringruns"))
    assert create_new < disable < delete  # the new schedule exists before the old one goes
    assert not any(
        method == "DELETE" and "/pipelines" in path for method, path in calls
    )  # never a pipeline or a version


def test_schedule_change_is_a_new_version(kfp_fake: FakeKfpControl, tmp_path: Path) -> None:
    _orchestrator(kfp_fake).deploy(_compile(tmp_path))
    later = dataclasses.replace(CRASHED_PIPELINE, schedule="30 2 * * 1")

    result = _orchestrator(kfp_fake).deploy(_compile(tmp_path, spec=later))

    (run,) = _enabled(kfp_fake.state())
    assert run["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * 1"
    assert run["display_name"] == f"{PROD} @ {result.version}"


def test_superseded_run_with_runs_in_flight_is_only_disabled(
    kfp_fake: FakeKfpControl, tmp_path: Path
) -> None:
    _orchestrator(kfp_fake).deploy(_compile(tmp_path, "registry.example.com/crashed:1"))
    old = kfp_fake.state()["recurring_runs"][0]
    in_flight = kfp_fake.run(
        recurring_run_id=old["recurring_run_id"], experiment_id=old["experiment_id"]
    )
    new = _compile(tmp_path, "registry.example.com/crashed:2")

    result = _orchestrator(kfp_fake).deploy(new)

    assert [a.verb for a in result.actions][-2:] == ["disable-recurring-run", "keep-recurring-run"]
    state = kfp_fake.state()
    modes = {r["display_name"]: r["mode"] for r in state["recurring_runs"]}
    assert modes == {old["display_name"]: "DISABLE", f"{PROD} @ {new.version}": "ENABLE"}
    assert state["runs"][0]["state"] == "RUNNING"  # not killed

    kfp_fake.run(run_id=in_flight["run_id"], state="SUCCEEDED")
    again = _orchestrator(kfp_fake).deploy(new)

    assert [a.verb for a in again.actions] == ["delete-recurring-run"]
    assert [r["display_name"] for r in kfp_fake.state()["recurring_runs"]] == [
        f"{PROD} @ {new.version}"
    ]


def test_a_paused_current_schedule_is_re_enabled(kfp_fake: FakeKfpControl, tmp_path: Path) -> None:
    import requests

    compiled = _compile(tmp_path)
    first = _orchestrator(kfp_fake).deploy(compiled)
    requests.post(
        f"{kfp_fake.url}/apis/v2beta1/recurringruns/{first.recurring_run_id}:disable", timeout=5
    ).raise_for_status()

    again = _orchestrator(kfp_fake).deploy(compiled)

    assert [a.verb for a in again.actions] == ["enable-recurring-run"]
    assert [r["mode"] for r in kfp_fake.state()["recurring_runs"]] == ["ENABLE"]


def test_dry_run_mutates_nothing(kfp_fake: FakeKfpControl, tmp_path: Path) -> None:
    fresh = _orchestrator(kfp_fake).deploy(_compile(tmp_path), dry_run=True)

    assert fresh.dry_run and fresh.changed
    assert fresh.actions[0].describe(True) == f"would create pipeline '{PROD}'"
    assert kfp_fake.mutations() == []

    _orchestrator(kfp_fake).deploy(_compile(tmp_path))
    before = kfp_fake.state()
    plan = _orchestrator(kfp_fake).deploy(
        _compile(tmp_path, "registry.example.com/crashed:2"), dry_run=True
    )

    assert [a.verb for a in plan.actions] == [
        "upload-version",
        "create-recurring-run",
        "disable-recurring-run",
        "delete-recurring-run",
    ]
    assert kfp_fake.state() == before


def test_unreachable_host_is_one_clean_line(tmp_path: Path) -> None:
    orchestrator = KfpOrchestrator(f"http://user:pw@127.0.0.1:{free_port()}", namespace="x")

    with pytest.raises(ServiceError) as raised:
        orchestrator.deploy(_compile(tmp_path))

    message = raised.value.message
    assert message.startswith("cannot reach Kubeflow Pipelines at http://127.0.0.1:")
    assert "Connection refused" in message
    assert "\n" not in message and "pw" not in message
    assert raised.value.exit_code == 3


def test_unauthorised_is_a_clean_error(kfp_secured: FakeKfpControl, tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as raised:
        KfpOrchestrator(kfp_secured.url, namespace="crashed").deploy(_compile(tmp_path))

    assert "HTTP 401" in raised.value.message
    assert "--client-id" in raised.value.message
    assert str(kfp_secured.token) not in raised.value.message
    assert kfp_secured.mutations() == []


def test_multi_user_deploy_puts_the_experiment_in_the_namespace(
    kfp_secured: FakeKfpControl, tmp_path: Path
) -> None:
    import kfp

    def client(**kwargs: Any) -> Any:
        return kfp.Client(existing_token=kfp_secured.token, **kwargs)

    orchestrator = KfpOrchestrator(kfp_secured.url, namespace="team-a", client_factory=client)
    orchestrator.deploy(_compile(tmp_path))
    second = orchestrator.deploy(_compile(tmp_path))

    state = kfp_secured.state()
    assert [(e["display_name"], e["namespace"]) for e in state["experiments"]] == [
        ("crashed", "team-a")
    ]
    assert [r["namespace"] for r in state["recurring_runs"]] == ["team-a"]
    assert [p.get("namespace") for p in state["pipelines"]] == ["team-a"]
    assert not second.changed


def _invoke(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray ./.env
    return {
        "CRASHED_HOME": str(tmp_path / "home"),
        "CRASHED_IMAGE": "registry.example.com/crashed:cli",
        "K8S_NAMESPACE": "crashed",
    }


def test_cli_deploy_prod_uses_settings_and_is_idempotent(
    kfp_fake: FakeKfpControl, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "KFP_HOST": kfp_fake.url}

    first = _invoke(["pipelines", "deploy-prod"], env)
    second = _invoke(["pipelines", "crashed_pipeline", "deploy-prod"], env)

    assert first.exit_code == 0, first.output
    assert "deployed:" in first.output and "create recurring run" in first.output
    assert second.exit_code == 0, second.output
    assert second.output.count("up to date") == 2  # training and monitor pipelines
    state = kfp_fake.state()
    names = sorted(run["display_name"].split(" @ ")[0] for run in state["recurring_runs"])
    assert names == ["crashed_monitor - prod", "crashed_pipeline - prod"]
    monitor_run = next(r for r in state["recurring_runs"] if "monitor" in r["display_name"])
    assert monitor_run["trigger"]["cron_schedule"]["cron"] == "0 0 6 * * *"


def test_cli_deploy_dev_is_a_separate_pipeline(
    kfp_fake: FakeKfpControl, cli_env: dict[str, str]
) -> None:
    args = ["pipelines", "crashed_pipeline", "deploy-dev", "--host", kfp_fake.url]

    result = _invoke(args, cli_env)

    assert result.exit_code == 0, result.output
    state = kfp_fake.state()
    assert sorted(p["display_name"] for p in state["pipelines"]) == [
        "crashed_monitor - dev",
        "crashed_pipeline - dev",
    ]
    assert [e["display_name"] for e in state["experiments"]] == ["crashed-dev"]


def test_cli_deploys_a_precompiled_package_and_dry_runs(
    kfp_fake: FakeKfpControl, cli_env: dict[str, str], tmp_path: Path
) -> None:
    package = tmp_path / "out" / "pipeline.yaml"
    compiled = _invoke(
        ["pipelines", "crashed_pipeline", "compile", "--output", str(package)], cli_env
    )
    assert compiled.exit_code == 0, compiled.output
    base = ["pipelines", "deploy-prod", "--host", kfp_fake.url, "--package", str(package)]

    plan = _invoke([*base, "--dry-run"], cli_env)
    assert plan.exit_code == 0, plan.output
    assert "would upload version" in plan.output and "nothing was changed" in plan.output
    assert kfp_fake.mutations() == []

    done = _invoke(base, cli_env)
    assert done.exit_code == 0, done.output
    version = kfp_fake.state()["versions"][0]["name"]
    assert version in compiled.output  # the hash printed by compile is what was deployed


def test_cli_unreachable_host_exits_3(cli_env: dict[str, str]) -> None:
    result = _invoke(
        ["pipelines", "deploy-prod", "--host", f"http://127.0.0.1:{free_port()}"], cli_env
    )

    assert result.exit_code == 3
    assert "error: cannot reach Kubeflow Pipelines" in result.output
    assert "Traceback" not in result.output


def test_start_run_runs_the_deployed_version_with_the_reason(
    kfp_fake: FakeKfpControl, tmp_path: Path
) -> None:
    orchestrator = _orchestrator(kfp_fake)
    orchestrator.deploy(_compile(tmp_path, "registry.example.com/crashed:1"))
    current = orchestrator.deploy(_compile(tmp_path, "registry.example.com/crashed:2"))

    info = orchestrator.start_run(
        "crashed_pipeline",
        {"force_promotion": "false", "trigger_reason": "drift: day_of_week PSI 0.41"},
        reason="drift: day_of_week PSI 0.41",
    )

    (run,) = kfp_fake.state()["runs"]
    assert run["pipeline_version_reference"] == {
        "pipeline_id": current.pipeline_id,
        "pipeline_version_id": current.version_id,  # the scheduled version, not any other
    }
    assert run["experiment_id"] == current.experiment_id
    assert run["runtime_config"]["parameters"] == {
        "force_promotion": "false",
        "trigger_reason": "drift: day_of_week PSI 0.41",
    }
    assert run["description"] == "drift: day_of_week PSI 0.41"
    assert (info.run_id, info.status, info.version) == (
        run["run_id"],
        "pending",
        current.version_id,
    )
    assert info.reason == "drift: day_of_week PSI 0.41"
    assert info.parameters["trigger_reason"] == "drift: day_of_week PSI 0.41"


def test_runs_in_flight_counts_started_and_scheduled_runs(
    kfp_fake: FakeKfpControl, tmp_path: Path
) -> None:
    orchestrator = _orchestrator(kfp_fake)
    deployed = orchestrator.deploy(_compile(tmp_path))
    started = orchestrator.start_run("crashed_pipeline", {}, reason="by hand")
    scheduled = kfp_fake.run(
        recurring_run_id=deployed.recurring_run_id, experiment_id=deployed.experiment_id
    )
    kfp_fake.run(recurring_run_id="someone-else", experiment_id=deployed.experiment_id)

    in_flight = orchestrator.runs_in_flight("crashed_pipeline")

    assert {r.run_id for r in in_flight} == {started.run_id, scheduled["run_id"]}
    assert {r.status for r in in_flight} == {"pending", "running"}
    kfp_fake.run(run_id=started.run_id, state="SUCCEEDED")
    kfp_fake.run(run_id=scheduled["run_id"], state="FAILED")
    assert orchestrator.runs_in_flight("crashed_pipeline") == []
    assert orchestrator.runs_in_flight("crashed_pipeline", environment="dev") == []


def test_start_run_needs_a_deployed_pipeline_and_declared_parameters(
    kfp_fake: FakeKfpControl, tmp_path: Path
) -> None:
    orchestrator = _orchestrator(kfp_fake)

    with pytest.raises(NotFoundError) as missing:
        orchestrator.start_run("crashed_pipeline", {}, reason="r")
    assert missing.value.exit_code == 4

    orchestrator.deploy(_compile(tmp_path))
    with pytest.raises(ServiceError) as refused:
        orchestrator.start_run("crashed_pipeline", {"bogus": "1"}, reason="r")
    assert "HTTP 400" in refused.value.message and "\n" not in refused.value.message
    assert kfp_fake.state()["runs"] == []


def test_dry_run_without_a_reachable_kfp_plans_offline(tmp_path: Path) -> None:
    compiled = _compile(tmp_path)

    for host in (None, f"http://127.0.0.1:{free_port()}"):
        plan = KfpOrchestrator(host, namespace="crashed").deploy(compiled, dry_run=True)

        assert plan.dry_run and plan.changed
        assert plan.offline is not None and "\n" not in plan.offline
        assert [a.verb for a in plan.actions] == [
            "create-pipeline",
            "upload-version",
            "create-experiment",
            "create-recurring-run",
        ]
        assert plan.version == compiled.version and plan.cron == "0 0 0 * * *"
        assert plan.recurring_run == f"{PROD} @ {compiled.version}"


def test_cli_dry_run_needs_no_host_and_no_credentials(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CRASHED_PLATFORM": "gcp", "GITLAB_TOKEN": ""}

    offline = _invoke(["pipelines", "deploy-prod", "--dry-run"], env)
    iap = _invoke(
        [
            "pipelines",
            "deploy-prod",
            "--dry-run",
            "--host",
            f"http://127.0.0.1:{free_port()}",
            "--client-id",
            "1234-abc.apps.googleusercontent.com",
        ],
        env,
    )
    without = _invoke(["pipelines", "deploy-prod"], env)
    bad_namespace = _invoke(["pipelines", "deploy-prod", "--dry-run", "--namespace", "Team_A"], env)

    for result in (offline, iap):
        assert result.exit_code == 0, result.output
        assert "registry.example.com/crashed:cli" in result.output  # what would be deployed
        assert "would upload version" in result.output
        assert "would create recurring run" in result.output
        assert "state of Kubeflow Pipelines unknown" in result.output
        assert "nothing was changed" in result.output
    assert without.exit_code == 2  # a real deploy still needs a host
    assert bad_namespace.exit_code == 2 and "--namespace" in bad_namespace.output
