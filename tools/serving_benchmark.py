"""``python -m tools.serving_benchmark``: the serving benchmark (``make bench-serving``).

The code is in ``tools/serving_bench/``, described in its package docstring.
"""

from __future__ import annotations

import sys

from tools.serving_bench.run import main

if __name__ == "__main__":
    sys.exit(main())
