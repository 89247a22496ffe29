"""Deterministic generator of realistic synthetic VicRoads crashes: test and demo data.

Not the domain (that is :mod:`crashed.core`): nothing in the model's path imports this.

* :mod:`~crashed.synthetic.tables`   loads the packaged ``fitted.json`` (figures, never rows)
* :mod:`~crashed.synthetic.simulate` draws every column from those tables, chained
  conditionally (date -> hour -> place -> speed zone -> accident type -> geometry -> vehicles
  -> people -> injuries), with :mod:`~crashed.synthetic.light` for the light condition
* :mod:`~crashed.synthetic.generate` adds the label from a latent logistic model and shapes the
  VicRoads lower-case CSV (40 columns of ``vic_crashes_2018.csv`` + ``dca_code``,
  ``unlicencsed``)
* :mod:`~crashed.synthetic.fit` re-fits ``fitted.json`` from the real files, using **only the
  training months Jan–Sep 2018**: the validation months Oct–Dec 2018 are never read, so a model
  trained on synthetic crashes has seen nothing of the real validation window.
"""

from crashed.synthetic.generate import COLUMNS, generate_crashes, write_csv

__all__ = ["COLUMNS", "generate_crashes", "write_csv"]
