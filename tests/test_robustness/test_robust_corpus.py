"""A hostile but realistic user: bad options and corrupt files for every subcommand.

Each case runs ``collbench`` in this process (``collbench.cli.main``: no process group is ever started, every
refusal happens before launch) and must give exit 2, exactly one stderr line ``collbench: error: ...``, no
traceback, and leave every file as it was (the whole working folder is hashed before and after).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from emulated_marks import NEEDS_ROOT

from collbench.cli import main

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "tests" / "data" / "nccl-tests" / "gb10-2node-all_reduce.log"


def _tree_hash(root: Path) -> str:
    """Every path under ``root`` with its bytes: any file written, changed or removed changes it."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _edit_csv(src: Path, dst: Path, column: str, value: str, row: int = 0) -> None:
    """A copy of the run ``src`` at ``dst`` whose results.csv has ``value`` in ``column`` of data row ``row``."""
    shutil.copytree(src, dst)
    lines = (dst / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1 + row].split(",")
    cells[header.index(column)] = value
    lines[1 + row] = ",".join(cells)
    (dst / "results.csv").write_text("\n".join(lines) + "\n")


def _edit_fits(src: Path, dst: Path, column: str, value: str) -> None:
    lines = src.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index(column)] = value
    lines[1] = ",".join(cells)
    dst.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a good imported run (two runs: one of 2 ranks, one of 4), its fits.csv, and corrupt
    copies of each."""
    root = tmp_path_factory.mktemp("corpus")
    # two world sizes, so a model fit exists: the log as it is (2 ranks), and a copy without its rank lines read as 4
    # ranks (with the rank lines, --world-size 4 would contradict them and be refused)
    no_ranks = root / "no-rank-lines.log"
    no_ranks.write_text("".join(ln for ln in LOG.open() if not ln.lstrip("# ").startswith("Rank ")))
    for p, log in ((2, LOG), (4, no_ranks)):
        assert main(["import", str(log), "--out", str(root / f"runs{p}"), "--world-size", str(p)]) == 0
    run = next((root / "runs2").iterdir())
    shutil.copytree(run, root / "good")
    shutil.copytree(next((root / "runs4").iterdir()), root / "good4")
    assert main(["fit", str(root / "good"), str(root / "good4"), "--out", str(root / "fit"), "--boot", "0"]) == 0
    fits = root / "fit" / "fits.csv"
    bad = root / "bad"
    bad.mkdir()
    # results files
    shutil.copytree(run, bad / "header_only")
    text = (bad / "header_only" / "results.csv").read_text().splitlines()
    (bad / "header_only" / "results.csv").write_text(text[0] + "\n")
    for name, col, val in (("nan_time", "time_us", "nan"), ("inf_time", "time_us", "inf"),
                           ("neg_time", "time_us", "-3"), ("text_time", "time_us", "fast"),
                           ("text_bytes", "bytes", "many"), ("neg_bytes", "bytes", "-8"),
                           ("bad_bool", "correct", "maybe")):  # fmt: skip
        _edit_csv(run, bad / name, col, val)
    for name in ("nan_time", "inf_time", "neg_time"):  # every row unphysical: nothing left to judge
        lines = (bad / name / "results.csv").read_text().splitlines()
        header = lines[0].split(",")
        i = header.index("time_us")
        rows = [line.split(",") for line in lines[1:]]
        for r in rows:
            r[i] = {"nan_time": "nan", "inf_time": "inf", "neg_time": "-3"}[name]
        (bad / name / "results.csv").write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    shutil.copytree(run, bad / "corrupt_json")
    (bad / "corrupt_json" / "run.json").write_text('{"schema_version": ')
    shutil.copytree(run, bad / "no_csv")
    (bad / "no_csv" / "results.csv").unlink()
    shutil.copytree(run, bad / "wrong_header")
    (bad / "wrong_header" / "results.csv").write_text("a,b,c\n1,2,3\n")
    shutil.copytree(run, bad / "future_schema")
    meta = json.loads((bad / "future_schema" / "run.json").read_text())
    meta["schema_version"] = 999
    (bad / "future_schema" / "run.json").write_text(json.dumps(meta))
    shutil.copytree(run, bad / "binary_csv")
    (bad / "binary_csv" / "results.csv").write_bytes(b"\xff\xfe\x00\x01" * 64)
    (bad / "empty_dir").mkdir()
    # fits files
    for name, col, val in (("neg_alpha", "alpha_us", "-5"), ("nan_alpha", "alpha_us", "nan"),
                           ("text_alpha", "alpha_us", "abc"), ("inf_alpha", "alpha_us", "inf"),
                           ("empty_alpha", "alpha_us", ""), ("zero_bw", "bw_gbps", "0"),
                           ("neg_bw", "bw_gbps", "-1"), ("nan_bw", "bw_gbps", "nan"),
                           ("text_bw", "bw_gbps", "fast"), ("neg_gamma", "gamma_gbps", "-2"),
                           ("bad_scope", "scope", "guess"), ("neg_segment", "segment_bytes", "-1")):  # fmt: skip
        _edit_fits(fits, bad / f"{name}.csv", col, val)
    (bad / "empty.csv").write_text("")
    (bad / "no_columns.csv").write_text("x,y\n1,2\n")
    # hardware files
    for name, body in (("hw_nan.toml", "nic_gbps = nan\n"), ("hw_neg.toml", "nic_gbps = -400\n"),
                       ("hw_zero.toml", "link_gbps = 0\n"), ("hw_text.toml", 'nic_gbps = "fast"\n'),
                       ("hw_inf.json", '{"hbm_gbps": Infinity}'), ("hw_bad.toml", "nic_gbps = = 3\n"),
                       ("hw_frac.toml", "nics_per_node = 2.5\n"), ("hw_list.json", "[1, 2]")):  # fmt: skip
        (bad / name).write_text(body)
    # nccl-tests logs
    (bad / "empty.log").write_text("")
    (bad / "binary.log").write_bytes(b"\x00\xff\xfe" * 1000)
    (bad / "no_table.log").write_text("# nccl-tests version 2.20.0\n# nothing ran\n")
    (bad / "failed.log").write_text("# Collective test starting: all_reduce_perf\nTest NCCL failure common.cu:123\n")
    (bad / "broken.json").write_text('{"results": [')
    return root


#: (id, argv with {good}, {good4}, {fits}, {bad}, {out} placeholders). Every case must exit 2 with one line.
CASES: list[tuple[str, list[str]]] = [
    # run: refused before any rank starts
    ("run-timeout-inf", ["run", "--timeout", "inf"]),
    ("run-timeout-nan", ["run", "--timeout", "nan"]),
    ("run-timeout-neg", ["run", "--timeout", "-1"]),
    ("run-max-time-inf", ["run", "--max-time-per-point", "inf"]),
    ("run-step-inf", ["run", "-f", "inf"]),
    ("run-step-one", ["run", "-f", "1"]),
    ("run-iters-huge", ["run", "-n", "99999999999999999999"]),
    ("run-iters-neg", ["run", "-n", "-5"]),
    ("run-warmup-neg", ["run", "-w", "-1"]),
    ("run-nprocs-zero", ["run", "--nprocs", "0"]),
    ("run-nprocs-huge", ["run", "--nprocs", "100000"]),
    ("run-bytes-text", ["run", "-b", "lots"]),
    ("run-bytes-huge", ["run", "-b", "1T", "-e", "1T"]),
    ("run-bytes-order", ["run", "-b", "1M", "-e", "1K"]),
    ("run-collective", ["run", "--collectives", "all_reduse"]),
    ("run-algorithm", ["run", "--collectives", "all_reduce", "--algorithms", "nope"]),
    ("run-dtype", ["run", "--dtype", "complex64"]),
    ("run-op", ["run", "--op", "xor"]),
    ("run-avg-builtin-gloo", ["run", "--collectives", "all_reduce", "--algorithms", "builtin", "--op", "avg"]),
    ("run-root", ["run", "--root", "-1"]),
    ("run-target-ci", ["run", "--target-ci", "0"]),
    ("run-segment", ["run", "--segment-bytes", "0"]),
    ("run-backend", ["run", "--backend", "mpi"]),
    ("run-cuda-graph-cpu", ["run", "--cuda-graph"]),
    ("run-window", ["run", "--window", "0"]),
    ("run-out-is-file", ["run", "--out", "{good}/results.csv"]),
    # pairs
    ("pairs-timeout-inf", ["pairs", "--timeout", "inf"]),
    ("pairs-large-huge", ["pairs", "--large-bytes", "1T"]),
    ("pairs-nprocs-one", ["pairs", "--nprocs", "1"]),
    ("pairs-threshold", ["pairs", "--threshold", "-1"]),
    ("pairs-iters", ["pairs", "-n", "0"]),
    ("pairs-small-text", ["pairs", "--small-bytes", "tiny"]),
    # fit
    ("fit-no-such", ["fit", "{out}/nowhere"]),
    ("fit-boot-huge", ["fit", "{good}", "--boot", "100000000", "--out", "{out}/f"]),
    ("fit-boot-neg", ["fit", "{good}", "--boot", "-1", "--out", "{out}/f"]),
    ("fit-robust", ["fit", "{good}", "--robust", "magic", "--out", "{out}/f"]),
    ("fit-corrupt-json", ["fit", "{bad}/corrupt_json", "--out", "{out}/f"]),
    ("fit-no-csv", ["fit", "{bad}/no_csv", "--out", "{out}/f"]),
    ("fit-wrong-header", ["fit", "{bad}/wrong_header", "--out", "{out}/f"]),
    ("fit-future-schema", ["fit", "{bad}/future_schema", "--out", "{out}/f"]),
    ("fit-binary-csv", ["fit", "{bad}/binary_csv", "--out", "{out}/f"]),
    ("fit-text-time", ["fit", "{bad}/text_time", "--out", "{out}/f"]),
    ("fit-text-bytes", ["fit", "{bad}/text_bytes", "--out", "{out}/f"]),
    ("fit-bad-bool", ["fit", "{bad}/bad_bool", "--out", "{out}/f"]),
    ("fit-empty-dir", ["fit", "{bad}/empty_dir", "--out", "{out}/f"]),
    ("fit-out-exists", ["fit", "{good}", "--out", "{fitdir}"]),
    # report
    ("report-compute-neg", ["report", "{good}", "--compute-ms", "-100", "--out", "{out}/r"]),
    ("report-peak-neg", ["report", "{good}", "--peak-gbps", "-5", "--out", "{out}/r"]),
    ("report-peak-nan", ["report", "{good}", "--peak-gbps", "nan", "--out", "{out}/r"]),
    ("report-overlap", ["report", "{good}", "--overlap", "2", "--out", "{out}/r"]),
    ("report-boot-huge", ["report", "{good}", "--boot", "100000000", "--out", "{out}/r"]),
    ("report-gamma-inf", ["report", "{good}", "--gamma-gbps", "inf", "--out", "{out}/r"]),
    ("report-grad-text", ["report", "{good}", "--grad-bytes", "big", "--out", "{out}/r"]),
    ("report-corrupt-json", ["report", "{bad}/corrupt_json", "--out", "{out}/r"]),
    ("report-nan-time", ["report", "{bad}/nan_time", "--out", "{out}/r"]),
    ("report-inf-time", ["report", "{bad}/inf_time", "--out", "{out}/r"]),
    ("report-neg-time", ["report", "{bad}/neg_time", "--out", "{out}/r"]),
    ("report-header-only", ["report", "{bad}/header_only", "--out", "{out}/r"]),
    ("report-out-is-a-run-file", ["report", "{good}", "--out", "{good}/results.csv"]),
    ("report-out-exists", ["report", "{good}", "--out", "{fitdir}", "--boot", "0"]),
    # verdict
    ("verdict-header-only", ["verdict", "{bad}/header_only"]),
    ("verdict-nan-time", ["verdict", "{bad}/nan_time"]),
    ("verdict-inf-time", ["verdict", "{bad}/inf_time"]),
    ("verdict-neg-time", ["verdict", "{bad}/neg_time"]),
    ("verdict-corrupt-json", ["verdict", "{bad}/corrupt_json"]),
    ("verdict-no-such", ["verdict", "{out}/nowhere"]),
    ("verdict-nic-neg", ["verdict", "{good}", "--nic-gbps", "-400"]),
    ("verdict-nic-nan", ["verdict", "{good}", "--nic-gbps", "nan"]),
    ("verdict-link-inf", ["verdict", "{good}", "--link-gbps", "inf"]),
    ("verdict-nics-zero", ["verdict", "{good}", "--nics-per-node", "0"]),
    ("verdict-gpu-unknown", ["verdict", "{good}", "--gpu", "NoSuchGPU 9000"]),
    ("verdict-system-unknown", ["verdict", "{good}", "--system", "nosuch"]),
    ("verdict-hw-nan", ["verdict", "{good}", "--hardware", "{bad}/hw_nan.toml"]),
    ("verdict-hw-neg", ["verdict", "{good}", "--hardware", "{bad}/hw_neg.toml"]),
    ("verdict-hw-zero", ["verdict", "{good}", "--hardware", "{bad}/hw_zero.toml"]),
    ("verdict-hw-text", ["verdict", "{good}", "--hardware", "{bad}/hw_text.toml"]),
    ("verdict-hw-inf", ["verdict", "{good}", "--hardware", "{bad}/hw_inf.json"]),
    ("verdict-hw-syntax", ["verdict", "{good}", "--hardware", "{bad}/hw_bad.toml"]),
    ("verdict-hw-frac", ["verdict", "{good}", "--hardware", "{bad}/hw_frac.toml"]),
    ("verdict-hw-list", ["verdict", "{good}", "--hardware", "{bad}/hw_list.json"]),
    ("verdict-hw-missing", ["verdict", "{good}", "--hardware", "{out}/nowhere.toml"]),
    # compare (bad options and unreadable runs; what it concludes is another test's business)
    ("compare-no-such", ["compare", "{good}", "{out}/nowhere"]),
    ("compare-corrupt", ["compare", "{good}", "{bad}/corrupt_json"]),
    ("compare-threshold", ["compare", "{good}", "{good4}", "--threshold", "-1"]),
    ("compare-alpha", ["compare", "{good}", "{good4}", "--alpha", "2"]),
    # import
    ("import-no-such", ["import", "{out}/nowhere.log", "--out", "{out}/i"]),
    ("import-empty", ["import", "{bad}/empty.log", "--out", "{out}/i"]),
    ("import-binary", ["import", "{bad}/binary.log", "--out", "{out}/i"]),
    ("import-no-table", ["import", "{bad}/no_table.log", "--out", "{out}/i"]),
    ("import-failed", ["import", "{bad}/failed.log", "--out", "{out}/i"]),
    ("import-broken-json", ["import", "{bad}/broken.json", "--out", "{out}/i"]),
    ("import-world-zero", ["import", str(LOG), "--world-size", "0", "--out", "{out}/i"]),
    ("import-one-bad-of-two", ["import", str(LOG), "{bad}/binary.log", "--out", "{out}/i"]),
    ("import-directory", ["import", "{bad}/empty_dir", "--out", "{out}/i"]),
    # predict
    ("predict-neg-alpha", ["predict", "--fits", "{bad}/neg_alpha.csv"]),
    ("predict-nan-alpha", ["predict", "--fits", "{bad}/nan_alpha.csv"]),
    ("predict-text-alpha", ["predict", "--fits", "{bad}/text_alpha.csv"]),
    ("predict-inf-alpha", ["predict", "--fits", "{bad}/inf_alpha.csv"]),
    ("predict-empty-alpha", ["predict", "--fits", "{bad}/empty_alpha.csv"]),
    ("predict-zero-bw", ["predict", "--fits", "{bad}/zero_bw.csv"]),
    ("predict-neg-bw", ["predict", "--fits", "{bad}/neg_bw.csv"]),
    ("predict-nan-bw", ["predict", "--fits", "{bad}/nan_bw.csv"]),
    ("predict-text-bw", ["predict", "--fits", "{bad}/text_bw.csv"]),
    ("predict-neg-gamma", ["predict", "--fits", "{bad}/neg_gamma.csv"]),
    ("predict-bad-scope", ["predict", "--fits", "{bad}/bad_scope.csv"]),
    ("predict-neg-segment", ["predict", "--fits", "{bad}/neg_segment.csv"]),
    ("predict-empty-csv", ["predict", "--fits", "{bad}/empty.csv"]),
    ("predict-no-columns", ["predict", "--fits", "{bad}/no_columns.csv"]),
    ("predict-no-such", ["predict", "--fits", "{out}/nowhere.csv"]),
    ("predict-world-text", ["predict", "--fits", "{fits}", "--world-sizes", "1e8"]),
    ("predict-world-zero", ["predict", "--fits", "{fits}", "--world-sizes", "0"]),
    ("predict-bytes-text", ["predict", "--fits", "{fits}", "--bytes", "big"]),
    ("predict-compute-nan", ["predict", "--fits", "{fits}", "--scaling", "--compute-ms", "nan"]),
    ("predict-overlap", ["predict", "--fits", "{fits}", "--scaling", "--overlap", "-0.5"]),
    ("predict-price", ["predict", "--fits", "{fits}", "--scaling", "--gpu-hour-usd", "-1"]),
    ("predict-boot", ["predict", "--fits", "{fits}", "--boot", "-1"]),
    ("predict-algorithm", ["predict", "--fits", "{fits}", "--algorithm", "nope"]),
    # export
    ("export-no-such", ["export", "--astra-sim", "--fits", "{out}/nowhere", "--gpus-per-node", "2",
                        "--out", "{out}/e.yaml"]),  # fmt: skip
    ("export-over-results", ["export", "--astra-sim", "--fits", "{good}", "{good4}", "--gpus-per-node", "2",
                             "--out", "{good}/results.csv"]),  # fmt: skip
    ("export-gpus-zero", ["export", "--astra-sim", "--fits", "{good}", "{good4}", "--gpus-per-node", "0",
                          "--out", "{out}/e.yaml"]),  # fmt: skip
    # unknown command and options
    ("unknown-command", ["benchmark"]),
    ("unknown-option", ["verdict", "{good}", "--frobnicate"]),
]


@pytest.mark.parametrize(("case", "argv"), CASES, ids=[c for c, _ in CASES])
def test_refused_with_one_line(corpus: Path, case: str, argv: list[str], capsys: pytest.CaptureFixture,
                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    out = corpus / "scratch" / case
    out.mkdir(parents=True)
    monkeypatch.chdir(out)  # a default --out (results/) lands here, where the hash sees it
    subs = {"good": corpus / "good", "good4": corpus / "good4", "fits": corpus / "fit" / "fits.csv",
            "fitdir": corpus / "fit", "bad": corpus / "bad", "out": out}  # fmt: skip
    args = [a.format(**{k: str(v) for k, v in subs.items()}) for a in argv]
    before = _tree_hash(corpus)
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("collbench: error: "), err
    assert _tree_hash(corpus) == before, f"{case} changed files on disk"


@NEEDS_ROOT
@pytest.mark.parametrize("argv", [["emulate", "--nodes", "0", "--", "true"],
                                  ["emulate", "--nic-gbps", "-1", "--", "true"],
                                  ["emulate", "--nic-gbps", "nan", "--", "true"],
                                  ["emulate", "--ranks-per-node", "0", "--", "true"],
                                  ["emulate", "--grace", "inf", "--", "true"]])  # fmt: skip
def test_emulate_refuses_before_any_namespace(argv: list[str], capsys: pytest.CaptureFixture, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if ": error:" in line]) == 1, err
    assert not any(tmp_path.iterdir())


def test_analysis_commands_keep_numpy_runtime_warnings_off_stderr(recwarn: pytest.WarningsRecorder) -> None:
    import numpy as np

    from collbench.cli import _quiet_numpy

    with _quiet_numpy():
        assert np.isneginf(np.log(np.float64(0.0)))
        assert np.isnan(np.mean(np.array([])))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    with pytest.warns(RuntimeWarning):  # outside it numpy warns as before
        np.mean(np.array([]))
