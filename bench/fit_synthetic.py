"""Re-fit the synthetic generator's packaged figures (``src/crashed/synthetic/fitted.json``).

Reads ``../shared/data/victoria-crashes/vic_crashes_2018.csv``, keeps only the training months
2018-01-01 .. 2018-09-30 (the validation months Oct–Dec are never used), and the July 2015
full-schema sample for DCA codes, dark street lighting and unlicensed drivers; writes figures
only, never rows. See :mod:`crashed.synthetic.fit`. Usage::

    .venv/bin/python bench/fit_synthetic.py [OUT.json]
"""

from __future__ import annotations

import sys

from crashed.synthetic.fit import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
