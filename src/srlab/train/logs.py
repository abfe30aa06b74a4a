"""Scalar logging: CSV and JSON lines always, TensorBoard when the package is installed.

``scalars.csv`` is long-format (``iteration,stage,tag,value,time``) so that stages with different losses
share one file; ``scalars.jsonl`` holds one JSON object per logged step with every scalar. Both are appended
to on resume (rows past the resumed iteration, and a row a kill cut short, are dropped first; a fresh start
drops every row), so the files never hold two histories.
Text messages go to ``train.log`` and, through ``echo``, to the terminal.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

from srlab.atomic import write_text
from srlab.serialize import dumps, loads

__all__ = ["RunLogger"]


def _truncate(path: Path, keep: Callable[[str], bool], header: bool) -> None:
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    kept = [ln for ln in body if keep(ln)]
    if len(kept) != len(body):
        write_text(path, "".join(head + kept))


class RunLogger:
    """Writes scalars and messages of one run (rank 0 only; other ranks get ``enabled=False``)."""

    def __init__(
        self,
        out_dir: Path,
        *,
        enabled: bool = True,
        tensorboard: bool = True,
        echo: Callable[[str], None] | None = print,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.echo = echo
        self.tb = None
        self._t0 = time.time()
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.out_dir / "scalars.csv"
        self.jsonl_path = self.out_dir / "scalars.jsonl"
        self.text_path = self.out_dir / "train.log"
        new = not self.csv_path.exists()
        self._open_scalars()
        if new:
            self._csv.writerow(["iteration", "stage", "tag", "value", "time"])
        self._text_fh = open(self.text_path, "a", encoding="utf-8")  # noqa: SIM115
        self.tb_status = "off"
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

                self.tb = SummaryWriter(log_dir=str(self.out_dir / "tb"))
                self.tb_status = "on"
            except Exception:  # noqa: BLE001 - ImportError, or a broken optional install
                self.tb_status = "not installed"

    def _open_scalars(self) -> None:
        # append-only logs: a kill loses at most the last line, which truncation drops when resuming
        self._csv_fh = open(self.csv_path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.writer(self._csv_fh)
        self._jsonl_fh = open(self.jsonl_path, "a", encoding="utf-8")  # noqa: SIM115

    def _reopen(self) -> None:
        """The scalar files were replaced (atomically rewritten): append to the new ones."""
        self._csv_fh.close()
        self._jsonl_fh.close()
        self._open_scalars()

    def truncate_after(self, stage_index: int, stage_names: list[str], iteration: int) -> None:
        """Drop rows logged after (stage_index, iteration) -- an earlier run went further than its checkpoint."""
        if not self.enabled:
            return
        order = {n: i for i, n in enumerate(stage_names)}
        self._csv_fh.flush()
        self._jsonl_fh.flush()

        # A row is kept only when it is whole (a kill can cut the last one) and at or before the resume point.
        def keep_csv(line: str) -> bool:
            parts = line.rstrip("\n").split(",")
            if not line.endswith("\n") or len(parts) != 5 or parts[1] not in order:
                return False
            try:
                it = int(parts[0])
            except ValueError:
                return False
            return (order[parts[1]], it) <= (stage_index, iteration)

        def keep_json(line: str) -> bool:
            try:
                rec = loads(line)
            except ValueError:
                return False
            if not line.endswith("\n") or not isinstance(rec, dict) or rec.get("stage") not in order:
                return False
            return (order[rec["stage"]], rec.get("iteration", 0)) <= (stage_index, iteration)

        _truncate(self.csv_path, keep_csv, header=True)
        _truncate(self.jsonl_path, keep_json, header=False)
        self._reopen()

    def reset(self) -> None:
        """Drop every scalar row: a run starting from scratch in a folder where an earlier one logged rows but
        left no checkpoint (killed before its first) has one history, its own."""
        if not self.enabled:
            return
        self._csv_fh.flush()
        self._jsonl_fh.flush()
        _truncate(self.csv_path, lambda _ln: False, header=True)
        _truncate(self.jsonl_path, lambda _ln: False, header=False)
        self._reopen()

    def scalars(
        self, stage: str, iteration: int, values: dict[str, float], global_step: int | None = None
    ) -> None:
        if not self.enabled:
            return
        now = round(time.time() - self._t0, 3)
        for k, v in values.items():
            self._csv.writerow([iteration, stage, k, repr(float(v)), now])
        # non-finite values (a diverged loss) are null in the JSON lines, as in every JSON srlab writes
        row = {
            "iteration": iteration,
            "stage": stage,
            "time": now,
            **{k: float(v) for k, v in values.items()},
        }
        self._jsonl_fh.write(dumps(row, indent=None) + "\n")
        self._csv_fh.flush()
        self._jsonl_fh.flush()
        if self.tb is not None:
            step = iteration if global_step is None else global_step
            for k, v in values.items():
                self.tb.add_scalar(f"{stage}/{k}", float(v), step)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        self._text_fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")
        self._text_fh.flush()
        if self.echo is not None:
            self.echo(text)

    def close(self) -> None:
        if not self.enabled:
            return
        for fh in (self._csv_fh, self._jsonl_fh, self._text_fh):
            try:
                fh.close()
            except Exception:  # noqa: BLE001
                pass
        if self.tb is not None:
            self.tb.close()
