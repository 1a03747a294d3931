"""Entry point behind `make run` and `make test`.

``python -m coreadmin.devstack test -- [pytest args]`` runs the suite against
DATABASE_URL / REDIS_URL.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m coreadmin.devstack run | test [-- pytest args]", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if command == "test":
        os.environ["COREADMIN_ENV"] = "test"
        import pytest

        return int(pytest.main(rest))
    print(f"unknown command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
