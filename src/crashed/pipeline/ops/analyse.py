"""analyse: categorical vocabularies and numeric summaries of the training window."""

from __future__ import annotations

from typing import Any

from crashed.core.distributions import analyse as summarise
from crashed.pipeline.ops.context import OpContext


def analyse(ctx: OpContext, extract: str) -> dict[str, Any]:
    """Write ``distributions.json`` for the training window; the encoder is fitted from it."""
    manifest = ctx.get_json(extract)
    with ctx.step(f"summarise training window ({manifest['train']['rows']} rows)"):
        distributions = summarise(ctx.get_frame(manifest["train"]["uri"]))
    distributions["window"] = {k: manifest["train"][k] for k in ("start", "end")}
    uri = ctx.put_json(ctx.run_uri("distributions.json"), distributions)
    vocab = {f: len(v["counts"]) for f, v in distributions["categorical"].items()}
    print(f"  vocabulary sizes: {vocab}")
    return {"distributions_uri": uri, "vocabulary_sizes": vocab}
