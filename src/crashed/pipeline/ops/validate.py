"""validate: schema, label, null rates and drift of the extracted data.

Schema violations fail the run (with every violation listed); drift and high null rates are
findings for the review report, not failures.
"""

from __future__ import annotations

import json

import pandas as pd
from pandas.api import types as ptypes

from crashed.core.distributions import analyse, drift
from crashed.core.evaluation import DriftFinding
from crashed.core.features import (
    CATEGORY_FEATURES,
    COUNT_FEATURES,
    DATE,
    LABEL,
    RAW_FEATURES,
    TIME_FEATURE,
)
from crashed.errors import CrashedError, InputError
from crashed.pipeline.contracts import ValidateInput, ValidateOutput
from crashed.pipeline.ops.context import OpContext

NULL_RATE_WARN = 0.5


def check_frame(
    frame: pd.DataFrame, part: str, start: str, end: str
) -> tuple[list[str], list[str]]:
    """(violations, warnings) of one extracted window."""
    violations: list[str] = []
    warnings: list[str] = []
    missing = [c for c in (DATE, LABEL, *RAW_FEATURES) if c not in frame.columns]
    if missing:
        violations.append(f"{part}: missing column(s): {', '.join(missing)}")
    if LABEL in frame:
        label = frame[LABEL]
        if label.isna().any():
            violations.append(f"{part}: {LABEL} is null on {int(label.isna().sum())} rows")
        if not ptypes.is_bool_dtype(label.dropna()):
            values = sorted(map(str, label.dropna().unique()))[:5]
            violations.append(f"{part}: {LABEL} must be boolean, found values {values}")
    if DATE in frame:
        dates = pd.to_datetime(frame[DATE], errors="coerce")
        if dates.isna().any():
            violations.append(
                f"{part}: {DATE} is null or not a date on {int(dates.isna().sum())} rows"
            )
        outside = (dates < pd.Timestamp(start)) | (dates > pd.Timestamp(end))
        if outside.any():
            violations.append(f"{part}: {int(outside.sum())} rows fall outside {start} .. {end}")
    for column in COUNT_FEATURES:
        if column not in frame:
            continue
        values = frame[column]
        if not (ptypes.is_integer_dtype(values) or values.isna().all()):
            violations.append(
                f"{part}: {column} must be an integer count, found type {values.dtype}"
            )
        elif (values.dropna() < 0).any():
            violations.append(f"{part}: {column} has negative counts")
    for column in (TIME_FEATURE, *CATEGORY_FEATURES):
        if column in frame and not (
            ptypes.is_string_dtype(frame[column])
            or ptypes.is_object_dtype(frame[column])
            or frame[column].isna().all()
        ):
            violations.append(f"{part}: {column} must be text, found type {frame[column].dtype}")
    for column in RAW_FEATURES:
        if column in frame and len(frame):
            rate = float(frame[column].isna().mean())
            if rate == 1.0:
                warnings.append(f"{part}: {column} is entirely null (the model cannot use it)")
            elif rate > NULL_RATE_WARN:
                warnings.append(f"{part}: {column} is null on {rate:.0%} of rows")
    return violations, warnings


def validate(ctx: OpContext, inp: ValidateInput) -> ValidateOutput:
    """Check both windows; compare category distributions with production's when there is one."""
    violations: list[str] = []
    warnings: list[str] = []
    frames = {}
    for part, window in (("train", inp.extract.train), ("validation", inp.extract.validation)):
        with ctx.step(f"check {part} window ({window.rows} rows)"):
            frame = ctx.get_frame(window.uri)
            found, warned = check_frame(frame, part, window.start, window.end)
        violations += found
        warnings += warned
        frames[part] = frame
    if inp.extract.train.positives == 0:
        violations.append("train: no positive (alcohol-related) crashes in the training window")
    findings: list[DriftFinding] = []
    production = ctx.production_reference()
    if production is not None and not violations:
        with ctx.step(f"drift vs production model {production.model.run_id}"):
            try:
                reference = json.loads(ctx.fetch_production(production, "distributions"))
            except CrashedError:
                warnings.append(
                    "production distributions could not be verified; drift not computed"
                )
            else:
                current = analyse(pd.concat([frames["train"], frames["validation"]]))
                findings = [DriftFinding(**d) for d in drift(reference, current)]
    uri = ctx.run_uri("validation-report.json")
    result = ValidateOutput(
        passed=not violations,
        violations=violations,
        warnings=warnings,
        drift=findings,
        production_run_id=production.model.run_id if production else None,
        report_uri=uri,
    )
    ctx.put_text(uri, result.model_dump_json(indent=2))
    if violations:
        listed = "\n".join(f"  - {v}" for v in violations)
        raise InputError(f"data validation failed with {len(violations)} violation(s):\n{listed}")
    for warning in warnings:
        print(f"  warning: {warning}")
    for finding in findings:
        if finding.level != "ok":
            print(f"  drift {finding.level}: {finding.feature} PSI {finding.psi}")
    return result
