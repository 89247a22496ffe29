"""The monitoring report (Markdown), written to the lake beside its JSON."""

from __future__ import annotations

from crashed.monitoring.contracts import MonitorOutput


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_monitoring_report(out: MonitorOutput) -> str:
    lines = [
        f"## Monitoring: `{out.model or 'no model'}` ({out.since} .. {out.until})",
        "",
        f"- production run `{out.model_run_id}`, model sha256 `{(out.model_sha256 or '')[:12]}`",
        f"- {out.rows} logged predictions; drift: **{'yes' if out.drift else 'no'}**; "
        f"score PSI {_num(out.score_psi)}; unseen-category rate {out.unseen_category_rate:.2%}",
        f"- retrain: {'**decided**' if out.trigger.decided else 'no'} — {out.trigger.reason}"
        + (f" → run `{out.trigger.started_run}`" if out.trigger.started_run else "")
        + (f" (not started: {out.trigger.skipped})" if out.trigger.skipped else ""),
        f"- rollback: {'**proposed**' if out.rollback.proposal else 'no'} — {out.rollback.reason}"
        + (f" → proposal {out.rollback.proposal}" if out.rollback.proposal else ""),
        "",
        "### Feature drift (PSI vs the production model's training data)",
        "",
        "| feature | PSI | unseen values | drifted |",
        "|---|---|---|---|",
    ]
    for name, feature in sorted(out.features.items(), key=lambda item: -item[1].psi):
        lines.append(
            f"| {name} | {feature.psi:.4f} | {feature.unseen_rate:.2%} | "
            f"{'⚠️ yes' if feature.drifted else 'no'} |"
        )
    lines += ["", "### Live quality", ""]
    quality = out.quality
    if quality is None:
        lines.append("_No labelled outcomes for logged predictions yet._")
    else:
        lines += [
            "| | live | production at validation |",
            "|---|---|---|",
            f"| ROC-AUC | {_num(quality.roc_auc)} | {_num(quality.reference_roc_auc)} |",
            f"| PR-AUC | {_num(quality.pr_auc)} | {_num(quality.reference_pr_auc)} |",
            f"| rows / positives | {quality.rows} / {quality.positives} | |",
            "",
            f"{'⚠️ ' if quality.breach else ''}{quality.detail}",
        ]
    return "\n".join(lines) + "\n"
