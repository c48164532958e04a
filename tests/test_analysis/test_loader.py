"""The run loader: schema kept in step with bench, truncated last lines, corrupt files, killed writers."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from analysis import synthetic
from analysis.errors import AnalysisError
from analysis.read_runs import load_run, load_runs
from bench.schema import CSV_COLUMNS


def _run(tmp: Path) -> Path:
    return synthetic.write_run(tmp, synthetic.Hardware(), sizes=(1024, 4096, 16384))


def test_truncated_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    run = _run(tmp_path)
    text = (run / "results.csv").read_text()
    (run / "results.csv").write_text(text[: len(text) - 25])  # killed mid-row
    with pytest.warns(UserWarning, match="truncated last line"):
        df = load_runs([run])
    assert len(df) == 2 and list(df.bytes) == [1024, 4096]


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("results.csv", "a,b\n1,2\n", "not a collbench"),
        ("run.json", "{not json", "corrupt run.json"),
        ("run.json", json.dumps({"schema_version": 99}), "schema_version 99"),
        ("results.csv", ",".join(CSV_COLUMNS) + "\n" + "x," * (len(CSV_COLUMNS) - 1) + "x\n", "is not"),
    ],
)
def test_corrupt_files_are_rejected_clearly(tmp_path: Path, file: str, content: str, message: str) -> None:
    run = _run(tmp_path)
    (run / file).write_text(content)
    with pytest.raises(AnalysisError, match=message):
        load_run(run)


def test_killed_writer_reads_as_incomplete(tmp_path: Path) -> None:
    run = _run(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    meta["status"] = "running"
    meta["writer"] = {"host": socket.gethostname(), "pid": 2**22 + 12345, "pid_start_ticks": 1}
    (run / "run.json").write_text(json.dumps(meta))
    assert load_run(run).meta["status"] == "incomplete"
    ticks = int(Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19])
    meta["writer"] = {"host": socket.gethostname(), "pid": os.getpid(), "pid_start_ticks": ticks}
    (run / "run.json").write_text(json.dumps(meta))
    assert load_run(run).meta["status"] == "running"  # this process is alive: still running


def test_columns_in_another_order_are_read(tmp_path: Path) -> None:
    """A results.csv re-saved by pandas or a spreadsheet keeps its column names, not their order."""
    import pandas as pd

    run = _run(tmp_path)
    before = load_runs([run], warn=False)
    frame = pd.read_csv(run / "results.csv", keep_default_na=False, dtype=str)
    frame[list(reversed(frame.columns))].assign(comment="re-saved").to_csv(run / "results.csv", index=False)
    after = load_runs([run], warn=False)
    assert list(after.columns) == list(before.columns)
    pd.testing.assert_frame_equal(after.drop(columns="samples_us"), before.drop(columns="samples_us"))


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    import pandas as pd

    run = _run(tmp_path)
    frame = pd.read_csv(run / "results.csv", keep_default_na=False, dtype=str)
    frame.drop(columns=["busbw_gbps", "cuda_graph"]).to_csv(run / "results.csv", index=False)
    with pytest.raises(AnalysisError, match=r"missing columns: busbw_gbps, cuda_graph\)$"):
        load_runs([run], warn=False)


def test_files_with_the_old_graph_column_still_load(tmp_path: Path) -> None:
    run = _run(tmp_path)
    lines = (run / "results.csv").read_text().splitlines(keepends=True)
    (run / "results.csv").write_text(lines[0].replace("cuda_graph", "graph") + "".join(lines[1:]))
    assert not load_runs([run], warn=False)["cuda_graph"].any()


def test_schema_v1_files_still_load_and_say_so(tmp_path: Path) -> None:
    """A schema-version-1 run (time_us is the plain median, none of version 2's columns) loads with version 2's
    columns derived, and the loader says it is version 1."""
    from bench.schema import V1_COLUMNS, V2_ADDED

    run = _run(tmp_path)
    text = (run / "results.csv").read_text().splitlines()
    header = text[0].split(",")
    keep = [header.index(c) for c in V1_COLUMNS]
    (run / "results.csv").write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in text) + "\n")
    meta = json.loads((run / "run.json").read_text())
    meta["schema_version"] = 1
    for p in meta["points"]:
        for c in V2_ADDED:
            p.pop(c, None)
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="schema v1 file"):
        df = load_runs([run])
    assert len(df) == 3 and (df["time_us_median"] == df["time_us"]).all()
    assert not df["ci_met"].any() and df["time_us_ci_lo"].isna().all() and df["slow_fraction"].isna().all()
    assert load_run(run).meta["schema_version"] == 1


@pytest.mark.parametrize("value", ["nan", "inf", "-5.0", "0"])
def test_unphysical_times_are_left_out_with_a_counted_warning(tmp_path: Path, value: str) -> None:
    """A time that cannot be physical is never fitted, compared or drawn: the point is dropped, and said."""
    import csv

    run = _run(tmp_path)
    with open(run / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[1]["time_us"] = value
    with open(run / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.warns(UserWarning, match="1 point.* cannot be physical"):
        df = load_runs([run])
    assert len(df) == len(rows) - 1 and (df["time_us"] > 0).all()


def test_duplicated_points_and_copied_runs_count_once(tmp_path: Path) -> None:
    import shutil

    run = _run(tmp_path / "a")
    lines = (run / "results.csv").read_text().splitlines(keepends=True)
    (run / "results.csv").write_text("".join(lines + lines[1:2]))  # the first point twice
    with pytest.warns(UserWarning, match="1 duplicated point"):
        one = load_runs([run])
    copy = tmp_path / "b" / run.name
    shutil.copytree(run, copy)
    with pytest.warns(UserWarning) as caught:
        both = load_runs([run, copy])
    said = [str(w.message) for w in caught]
    assert any("read already" in m for m in said) and any("1 duplicated point" in m for m in said), said
    assert len(both) == len(one) == len(lines) - 1
