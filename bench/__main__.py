"""`make bench`: runs every bench/bench_*.py module's main() in turn and prints figures.

`python -m bench api proxies` runs only the named ones (bench_api.py, bench_proxies.py).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(
        p.stem[len("bench_") :] for p in Path(__file__).parent.glob("bench_*.py")
    )
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"\n=== {name} ===", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
