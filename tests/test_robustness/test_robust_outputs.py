"""Where the writers put their outputs: never inside a run directory they did not create (issue 29).

Tables of cases, each run in this process (``collbench.cli.main``) on a fresh copy of a folder of two imported runs:

- ``DEFAULTS``: fit and report without ``--out`` write beside a run directory (``<run>.fit``, ``<run>.report``) and
  inside a folder of runs (``<folder>/fit``, ``<folder>/report``); every run directory stays byte-identical, with no
  new file or folder in it, and nothing is warned about;
- ``INSIDE``: every writer given an ``--out`` equal to or inside a run directory refuses, exit 2 and one line that
  says why, before any file is written (the whole folder is hashed before and after), ``--force`` or not;
- ``SCANS``: the sibling output folders are not runs to anything that reads a folder of runs: no warning, no error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from collbench.cli import main

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "tests" / "data" / "nccl-tests" / "gb10-2node-all_reduce.log"
#: complete scale runs at several world sizes (committed): scale --study reads them before claiming its --out
SCALE_RUNS = ROOT / "results" / "scale-emulated" / "study"


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root``, with a hash of its bytes for files ("dir" for folders)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}  # fmt: skip


def _run_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if (p / "run.json").is_file())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``results/`` holding two imported runs of the nccl-tests log (read as 2 and as 4 ranks)."""
    root = tmp_path_factory.mktemp("outputs")
    no_ranks = root / "no-rank-lines.log"
    no_ranks.write_text("".join(ln for ln in LOG.open() if not ln.lstrip("# ").startswith("Rank ")))
    for p, log in ((2, LOG), (4, no_ranks)):
        assert main(["import", str(log), "--out", str(root / "results"), "--world-size", str(p)]) == 0
    return root / "results"


@pytest.fixture
def folder(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template folder of runs."""
    return Path(shutil.copytree(template, tmp_path / "results"))


def _subs(folder: Path) -> dict[str, str]:
    run, run4 = sorted(_run_dirs(folder), key=lambda r: json.loads((r / "run.json").read_text())["world_size"])
    return {"folder": str(folder), "run": str(run), "run4": str(run4), "scale": str(SCALE_RUNS),
            "single": str(folder.parent / "single")}  # fmt: skip


def _main(argv: list[str], folder: Path, capsys: pytest.CaptureFixture, cwd: str | None = None,
          monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:  # fmt: skip
    """``collbench`` with the placeholders of ``argv`` filled in; exit code, stdout, stderr."""
    subs = _subs(folder)
    if cwd is not None and monkeypatch is not None:
        monkeypatch.chdir(cwd.format(**subs))
    capsys.readouterr()
    try:
        rc = main([a.format(**subs) for a in argv])
    except SystemExit as exc:  # argparse's own refusals
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


# ---- defaults: beside a run, inside a folder of runs ------------------------------------------------------------

#: (id, argv, working directory or None, the files it must write). Placeholders: {folder} and its runs {run} (2
#: ranks) and {run4} (4 ranks).
DEFAULTS: list[tuple[str, list[str], str | None, list[str]]] = [
    ("fit-run", ["fit", "{run}", "--boot", "0"], None, ["{run}.fit/fits.csv"]),
    ("fit-run-file", ["fit", "{run}/results.csv", "--boot", "0"], None, ["{run}.fit/fits.csv"]),
    ("fit-two-runs", ["fit", "{run4}", "{run}", "--boot", "0"], None, ["{run4}.fit/fits.csv"]),
    ("fit-dot", ["fit", ".", "--boot", "0"], "{run}", ["{run}.fit/fits.csv"]),
    ("fit-folder", ["fit", "{folder}", "--boot", "0"], None, ["{folder}/fit/fits.csv"]),
    ("report-run", ["report", "{run}", "--boot", "0"], None,
     ["{run}.report/report.md", "{run}.report/report.html", "{run}.report/fits.csv"]),
    ("report-run-dot", ["report", ".", "--boot", "0"], "{run}", ["{run}.report/report.md"]),
    ("report-folder", ["report", "{folder}", "--boot", "0"], None,
     ["{folder}/report/report.md", "{folder}/report/report.html"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "argv", "cwd", "wanted"), DEFAULTS, ids=[c[0] for c in DEFAULTS])
def test_default_outputs_land_beside_the_run(case: str, argv: list[str], cwd: str | None, wanted: list[str],
                                             folder: Path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    runs = {run: _tree(run) for run in _run_dirs(folder)}
    rc, out, err = _main(argv, folder, capsys, cwd, monkeypatch)
    assert rc == 0, err
    assert "warning" not in out + err, out + err
    subs = _subs(folder)
    for name in wanted:
        assert Path(name.format(**subs)).is_file(), (name, sorted(p.name for p in folder.iterdir()))
    assert {run: _tree(run) for run in _run_dirs(folder)} == runs, f"{case} wrote inside a run directory"
    # the output folder is a new sibling of the runs (or a child of the folder), never nested in a run
    made = {p.name for p in folder.iterdir()} - {r.name for r in runs}
    assert len(made) == 1 and not any(Path(w.format(**subs)).is_relative_to(r) for w in wanted for r in runs), made


def test_a_second_default_call_is_refused_and_the_first_output_kept(folder: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    assert _main(["fit", "{run}", "--boot", "0"], folder, capsys)[0] == 0
    fits = Path(_subs(folder)["run"] + ".fit") / "fits.csv"
    first = fits.read_bytes()
    rc, _, err = _main(["fit", "{run}", "--boot", "0", "--robust", "huber"], folder, capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--force" in err and f"{fits.parent}" in err, err
    assert fits.read_bytes() == first
    assert _main(["fit", "{run}", "--boot", "0", "--robust", "huber", "--force"], folder, capsys)[0] == 0


# ---- --out inside (or equal to) a run directory: refused ---------------------------------------------------------

#: (id, argv). Every case exits 2 with one line saying collbench never writes inside a run directory.
INSIDE: list[tuple[str, list[str]]] = [
    ("fit-out-run", ["fit", "{run}", "--boot", "0", "--out", "{run}"]),
    ("fit-out-in-run", ["fit", "{run}", "--boot", "0", "--out", "{run}/fit"]),
    ("fit-out-deep-in-run", ["fit", "{folder}", "--boot", "0", "--out", "{run4}/a/b"]),
    ("fit-out-dotdot", ["fit", "{run}", "--boot", "0", "--out", "{run}/x/../fit"]),
    ("fit-out-in-run-force", ["fit", "{run}", "--boot", "0", "--out", "{run}/fit", "--force"]),
    ("report-out-run", ["report", "{run}", "--boot", "0", "--out", "{run}"]),
    ("report-out-in-run", ["report", "{run}", "--boot", "0", "--out", "{run}/report"]),
    ("report-out-in-run-force", ["report", "{folder}", "--boot", "0", "--out", "{run}/report", "--force"]),
    ("export-csv-out-run", ["export", "--csv", "{run}", "--out", "{run}"]),
    ("export-csv-out-in-run", ["export", "--csv", "{run}", "--out", "{run}/csv", "--force"]),
    ("export-prometheus-in-run", ["export", "--prometheus", "{run}", "--out", "{run}/collbench.prom"]),
    ("export-simai-in-run", ["export", "--simai", "--tp", "{run}", "--out", "{run}/busbw.yaml", "--force"]),
    ("import-out-run", ["import", str(LOG), "--out", "{run}"]),
    ("import-out-in-run", ["import", str(LOG), "--out", "{run}/imports"]),
    ("run-out-run", ["run", "--out", "{run}", "-e", "1K"]),
    ("pairs-out-in-run", ["pairs", "--out", "{run}/pairs"]),
    ("hunt-out-run", ["hunt", "--out", "{run}"]),
    ("scale-out-run", ["scale", "--out", "{run}"]),
    ("scale-study-out-in-run", ["scale", "--study", "{scale}", "--out", "{run}/study", "--boot", "0"]),
    ("emulate-out-run", ["emulate", "--nodes", "2", "--out", "{run}", "--", "run", "-e", "1K"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "argv"), INSIDE, ids=[c for c, _ in INSIDE])
def test_out_inside_a_run_directory_is_refused(case: str, argv: list[str], folder: Path,
                                               capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    before = _tree(folder)
    rc, _, err = _main(argv, folder, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert rc == 2, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("collbench: error: --out "), err
    assert "collbench never writes inside a run directory other than by the command that made it" in lines[0], err
    assert "e.g. " in lines[0], err  # names another place
    assert _tree(folder) == before, f"{case} changed files on disk"


# ---- the sibling folders are not runs to anything that scans a folder ---------------------------------------------

#: (id, argv) run on the folder after fit and report wrote their defaults beside both runs and inside the folder
SCANS: list[tuple[str, list[str]]] = [
    ("fit", ["fit", "{folder}", "--boot", "0", "--out", "{folder}/fit-again"]),
    ("report", ["report", "{folder}", "--boot", "0", "--out", "{folder}/report-again"]),
    ("verdict", ["verdict", "{folder}"]),
    ("export-csv", ["export", "--csv", "{folder}", "--out", "{folder}/csv"]),
    ("compare", ["compare", "{single}", "{run}"]),  # a side: a folder of runs of one configuration
]


@pytest.fixture(scope="module")
def crowded(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of runs after every default output was written: <run>.fit, <run>.report, fit/, report/; beside
    it ``single/``, a second import of the 2-rank run with its own <run>.fit and <run>.report."""
    folder = Path(shutil.copytree(template, tmp_path_factory.mktemp("crowded") / "results"))
    single = folder.parent / "single"
    assert main(["import", str(LOG), "--out", str(single), "--world-size", "2"]) == 0
    for run in [*_run_dirs(folder), *_run_dirs(single)]:
        assert main(["fit", str(run), "--boot", "0"]) == 0 and main(["report", str(run), "--boot", "0"]) == 0
    assert main(["fit", str(folder), "--boot", "0"]) == 0 and main(["report", str(folder), "--boot", "0"]) == 0
    assert len([p for p in folder.iterdir() if p.suffix in (".fit", ".report")]) == 4
    return folder


@pytest.mark.parametrize(("case", "argv"), SCANS, ids=[c for c, _ in SCANS])
def test_sibling_outputs_are_not_mistaken_for_runs(case: str, argv: list[str], crowded: Path,
                                                   capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    from analysis.read_runs import find_runs

    assert sorted(r.path for r in find_runs(crowded)) == _run_dirs(crowded)
    rc, out, err = _main(argv, crowded, capsys)
    assert rc == 0, err
    assert not any(w in (out + err).lower() for w in ("warning", "error", "skipp", ".fit", ".report")), out + err
    for extra in ("fit-again", "report-again", "csv"):
        shutil.rmtree(crowded / extra, ignore_errors=True)


def test_committed_analyses_lie_outside_every_run_directory() -> None:
    """results/: each committed fit, report, study and export sits in a folder of runs, never inside a run."""
    from bench.schema import enclosing_run_dir

    outputs = [p for name in ("fits.csv", "report.md", "scale.csv", "points.csv")
               for p in (ROOT / "results").rglob(name)]  # fmt: skip
    assert len(outputs) > 5
    inside = [str(p.relative_to(ROOT)) for p in outputs if enclosing_run_dir(p.parent) is not None]
    assert not inside, inside


def test_a_fit_with_nothing_to_fit_leaves_no_empty_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fit claims its default folder before fitting (so a refusal comes first); when no curve has 3 sizes it exits 2
    and takes the folder it made away again."""
    rows = [ln for ln in LOG.open() if ln.strip() and not ln.lstrip().startswith("#")]
    short = tmp_path / "two-sizes.log"
    short.write_text("".join(ln for ln in LOG.open() if ln.lstrip().startswith("#") or ln not in rows[2:]))
    assert main(["import", str(short), "--out", str(tmp_path / "results"), "--world-size", "2"]) == 0
    (run,) = _run_dirs(tmp_path / "results")
    capsys.readouterr()
    assert main(["fit", str(run)]) == 2
    assert "nothing to fit" in capsys.readouterr().err
    assert not run.with_name(run.name + ".fit").exists()


def test_a_study_without_out_goes_inside_its_folder_of_runs(tmp_path: Path) -> None:
    """scale --study FOLDER writes FOLDER/study (not results/ of the working directory); the runs stay as they were."""
    folder = Path(shutil.copytree(SCALE_RUNS, tmp_path / "study-runs"))
    before = _tree(folder)
    assert main(["scale", "--study", str(folder), "--json"]) == 0
    assert (folder / "study" / "scale.csv").is_file()
    after = {k: v for k, v in _tree(folder).items() if not k.startswith("study")}
    assert after == before
