"""Wall time of quick CLI commands against the floor every command pays: starting Python and importing torch.

    python benchmarks/cli_bench.py [--repeat 3]

Each command runs in a fresh interpreter, ``--repeat`` times; the table gives the best time and the ratio
to ``python -c "import torch"`` measured in the same run, so machines of different speed compare.
``srlab models`` lists every preset with its parameter count: it builds each network on the meta device
without random initialisation (srlab.models.registry), so it costs little more than the import floor.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

CASES = {
    "python -c 'import torch' (floor)": [sys.executable, "-c", "import torch"],
    "srlab models": [sys.executable, "-m", "srlab", "models"],
    "srlab weights list": [sys.executable, "-m", "srlab", "weights", "list"],
    "srlab train srcnn_x2_paper --help": [sys.executable, "-m", "srlab", "train", "srcnn_x2_paper", "--help"],
}


def best_of(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    rows = [(name, best_of(cmd, args.repeat)) for name, cmd in CASES.items()]
    floor = rows[0][1]
    print(f"| command | best of {args.repeat}, s | × import torch |")
    print("|:---|---:|---:|")
    for name, t in rows:
        print(f"| `{name}` | {t:.2f} | {t / floor:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
