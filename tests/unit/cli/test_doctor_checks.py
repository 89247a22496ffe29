"""``crashed doctor``'s report machinery: deadlines, verdicts, fixes and secret scrubbing."""

from __future__ import annotations

import threading

from crashed.cli.doctor import CheckFailed, CheckResult, run_checks
from crashed.errors import ServiceError


def test_lines_carry_mark_detail_and_the_fix_only_when_failing() -> None:
    assert CheckResult("lake", True, "ok", "unused").line() == "✓ lake: ok"
    assert CheckResult("lake", False, "down", "start it").line() == "✗ lake: down — start it"
    assert CheckResult("lake", False, "down").line() == "✗ lake: down"


def test_each_check_becomes_one_result_in_plan_order() -> None:
    def failed() -> str:
        raise CheckFailed("table crashes_raw is missing", "crashed data load --csv <file>")

    def service() -> str:
        raise ServiceError("cannot reach GitLab")

    def crash() -> str:
        raise ValueError("boom\nsecond line")

    results = run_checks(
        [
            ("a", lambda: "fine", "fix a", "endpoint a"),
            ("b", failed, "generic fix", "endpoint b"),
            ("c", service, "fix c", "endpoint c"),
            ("d", crash, "fix d", "endpoint d"),
        ],
        timeout=30,
    )
    assert [(r.name, r.ok) for r in results] == [
        ("a", True),
        ("b", False),
        ("c", False),
        ("d", False),
    ]
    assert results[0].detail.startswith("fine (")
    assert (results[1].detail, results[1].fix) == (
        "table crashes_raw is missing",
        "crashed data load --csv <file>",
    )
    assert (results[2].detail, results[2].fix) == ("cannot reach GitLab", "fix c")
    assert results[3].detail == "endpoint d: ValueError: boom second line"


def test_a_check_past_the_deadline_fails_without_waiting_for_it() -> None:
    release = threading.Event()
    results = run_checks(
        [
            ("slow", lambda: "late" if release.wait(60) else "never", "check it", "host:1"),
            ("quick", lambda: "ok", "", "host:2"),
        ],
        timeout=0.5,
    )
    release.set()
    assert [(r.name, r.ok) for r in results] == [("slow", False), ("quick", True)]
    assert results[0].detail == "host:1: no answer within 0.5 s"
    assert results[0].fix == "check it"


def test_secrets_never_reach_a_line() -> None:
    def leaky() -> str:
        raise ServiceError("401 for token glpat-abc123 at https://x")

    (result,) = run_checks([("git host", leaky, "fix", "GitLab")], 30, ("glpat-abc123",))
    assert "glpat-abc123" not in result.line()
    assert result.detail == "401 for token *** at https://x"
