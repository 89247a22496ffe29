"""analyse: categorical vocabularies and numeric summaries of the training window."""

from __future__ import annotations

from crashed.core.distributions import analyse as summarise
from crashed.pipeline.contracts import AnalyseInput, AnalyseOutput
from crashed.pipeline.ops.context import OpContext
from crashed.pipeline.ops.jsonio import dumps


def analyse(ctx: OpContext, inp: AnalyseInput) -> AnalyseOutput:
    """Write ``distributions.json`` for the training window; the encoder is fitted from it."""
    train = inp.extract.train
    with ctx.step(f"summarise training window ({train.rows} rows)"):
        distributions = summarise(ctx.get_frame(train.uri))
    distributions["window"] = {"start": train.start, "end": train.end}
    uri = ctx.put_text(ctx.run_uri("distributions.json"), dumps(distributions))
    vocab = {f: len(v["counts"]) for f, v in distributions["categorical"].items()}
    print(f"  vocabulary sizes: {vocab}")
    return AnalyseOutput(distributions_uri=uri, vocabulary_sizes=vocab)
