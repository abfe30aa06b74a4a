"""RunLogger: what scalars.csv, scalars.jsonl and train.log hold, and resume truncation."""

from __future__ import annotations

import csv
import json

from srlab.train.logs import RunLogger


def _csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_scalars_are_written_long_format_to_csv_and_one_object_per_step_to_jsonl(tmp_path):
    said = []
    log = RunLogger(tmp_path, tensorboard=False, echo=said.append)
    assert log.tb_status == "off"
    log.scalars("psnr", 10, {"l_pix": 0.25, "lr": 1e-4})
    log.scalars("psnr", 20, {"l_pix": float("nan")})
    log.message("hello")
    log.close()
    rows = _csv(tmp_path / "scalars.csv")
    assert rows[0] == ["iteration", "stage", "tag", "value", "time"]
    assert [r[:4] for r in rows[1:]] == [
        ["10", "psnr", "l_pix", "0.25"],
        ["10", "psnr", "lr", "0.0001"],
        ["20", "psnr", "l_pix", "nan"],
    ]
    assert all(float(r[4]) >= 0 for r in rows[1:])
    recs = [json.loads(x) for x in (tmp_path / "scalars.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "time"} for r in recs] == [
        {"iteration": 10, "stage": "psnr", "l_pix": 0.25, "lr": 1e-4},
        {"iteration": 20, "stage": "psnr", "l_pix": "NaN"},  # non-finite: a string, strict JSON
    ]
    text = (tmp_path / "train.log").read_text().splitlines()
    assert len(text) == 1 and text[0].endswith(" hello") and said == ["hello"]


def test_reopening_appends_and_truncate_after_drops_rows_past_the_resume_point(tmp_path):
    log = RunLogger(tmp_path, tensorboard=False, echo=None)
    for it in (2, 4, 6):
        log.scalars("psnr", it, {"l": float(it)})
    log.scalars("gan", 2, {"l": 1.0})
    log.close()
    # a later run resumes from psnr @4: psnr 6 and all of gan are gone, the header stays, new rows append
    log = RunLogger(tmp_path, tensorboard=False, echo=None)
    log.truncate_after(0, ["psnr", "gan"], 4)
    log.scalars("psnr", 6, {"l": 60.0})
    log.close()
    rows = _csv(tmp_path / "scalars.csv")
    assert rows[0][0] == "iteration" and sum(r[0] == "iteration" for r in rows) == 1
    assert [(r[0], r[1], r[3]) for r in rows[1:]] == [
        ("2", "psnr", "2.0"),
        ("4", "psnr", "4.0"),
        ("6", "psnr", "60.0"),
    ]
    recs = [json.loads(x) for x in (tmp_path / "scalars.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["iteration"], r["l"]) for r in recs] == [
        ("psnr", 2, 2.0),
        ("psnr", 4, 4.0),
        ("psnr", 6, 60.0),
    ]


def test_a_disabled_logger_writes_nothing(tmp_path):
    said = []
    log = RunLogger(tmp_path / "rank1", enabled=False, echo=said.append)
    log.scalars("psnr", 1, {"l": 1.0})
    log.message("x")
    log.truncate_after(0, ["psnr"], 0)
    log.close()
    assert not (tmp_path / "rank1").exists() and said == []
