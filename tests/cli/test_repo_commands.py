"""Every repository subcommand of ``spherex-dask``, run as a user would through click."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from spherex_dask.cli import cli


def run(*args: str, ok: bool = True, input: str | None = None) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
    return result.output


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    run("simulate", out, "--exposures", "2", "--detectors", "1,2", "--size", "32", "--seed", "3")
    return out


@pytest.fixture
def repo(tmp_path: Path, sim_dir: Path) -> Path:
    root = tmp_path / "repo"
    run("create", root)
    run("ingest-simulated", root, sim_dir, "--ingest-type", "raw", "--no-progress")
    run("ingest-simulated", root, sim_dir, "--ingest-type", "dark", "--no-progress")
    return root


def test_create_twice_is_an_error(tmp_path: Path) -> None:
    """Creating a repository where one exists fails with a clear message."""
    run("create", tmp_path / "r")
    out = run("create", tmp_path / "r", ok=False)
    assert "already exists" in out


def test_create_with_custom_dimension_config(tmp_path: Path) -> None:
    """--dimension-config stores a custom universe in the new repository."""
    from spherex_dask.dimensions import DimensionUniverse

    text = DimensionUniverse.default().to_yaml().replace("name: spherex", "name: custom")
    cfg = tmp_path / "dims.yaml"
    cfg.write_text(text)
    run("create", tmp_path / "r", "--dimension-config", cfg)
    from spherex_dask.cli._repo import open_registry

    assert open_registry(str(tmp_path / "r")).universe.name == "custom"


def test_ingest_and_query_datasets_json(repo: Path) -> None:
    """query-datasets --format json lists id, dataset_type, run, data_id and uri."""
    rows = json.loads(run("query-datasets", repo, "raw", "--collections", "rawexpr",
                          "--format", "json"))
    assert len(rows) == 4
    assert set(rows[0]) == {"id", "dataset_type", "run", "data_id", "uri"}
    assert all(Path(r["uri"]).exists() for r in rows)
    assert {r["data_id"]["detector"] for r in rows} == {1, 2}


def test_query_datasets_where(repo: Path) -> None:
    """--where narrows the result with the query language; a bad one is a clear error."""
    rows = json.loads(run("query-datasets", repo, "raw", "--collections", "rawexpr",
                          "--where", "detector = 2", "--format", "json"))
    assert {r["data_id"]["detector"] for r in rows} == {2}
    out = run("query-datasets", repo, "raw", "--collections", "rawexpr", "--where",
              "detector = = 2", ok=False)
    assert "column" in out


def test_query_tables_for_people(repo: Path) -> None:
    """Table output has a header row and one line per result."""
    out = run("query-dataset-types", repo)
    assert "raw" in out
    assert "dark" in out
    assert "storage_class" in out
    out = run("query-dimension-records", repo, "detector", "--where", "detector.band > 4")
    assert "lmin" in out
    assert len(out.strip().splitlines()) == 2 + 2
    out = run("query-data-ids", repo, "exposure", "detector", "--datasets", "raw")
    assert len(out.strip().splitlines()) == 2 + 4


def test_collections_chain_and_certify(repo: Path) -> None:
    """certify-calibrations, collection-chain and query-collections --flatten-chains."""
    run("certify-calibrations", repo, "darkr", "calib", "dark", "--begin-date", "2020-01-01")
    run("collection-chain", repo, "inputs", "rawexpr,calib")
    rows = json.loads(run("query-collections", repo, "--format", "json"))
    types = {r["name"]: r["type"] for r in rows}
    assert types == {"rawexpr": "RUN", "darkr": "RUN", "calib": "CALIBRATION", "inputs": "CHAINED"}
    flat = json.loads(run("query-collections", repo, "inputs", "--flatten-chains",
                          "--format", "json"))
    assert [r["name"] for r in flat] == ["rawexpr", "calib"]
    only_runs = json.loads(run("query-collections", repo, "--collection-type", "RUN",
                               "--format", "json"))
    assert {r["name"] for r in only_runs} == {"rawexpr", "darkr"}
    out = run("collection-chain", repo, "inputs", "inputs", ok=False)
    assert "inputs" in out


def test_prune_and_remove_runs(repo: Path) -> None:
    """prune-datasets removes files and entries; remove-runs drops a whole run."""
    rows = json.loads(run("query-datasets", repo, "raw", "--collections", "rawexpr",
                          "--format", "json"))
    run("prune-datasets", repo, "raw", "--collections", "rawexpr", "--where", "detector = 1",
        "--no-confirm")
    left = json.loads(run("query-datasets", repo, "raw", "--collections", "rawexpr",
                          "--format", "json"))
    assert len(left) == len(rows) // 2
    gone = [r for r in rows if r["data_id"]["detector"] == 1]
    assert not any(Path(r["uri"]).exists() for r in gone)
    run("remove-runs", repo, "rawexpr", "--no-confirm")
    assert "rawexpr" not in run("query-collections", repo)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_verify_finds_missing_and_changed_files(sim_dir: Path, tmp_path: Path) -> None:
    """verify lists missing and changed files and exits 1; sizes only without checksums,
    checksums (a changed byte) with them; unstored datasets are not problems."""
    repo = tmp_path / "repo"
    run("create", repo)
    for kind in ("raw", "dark"):  # copies: the files changed below are the repository's own
        run("ingest-simulated", repo, sim_dir, "--ingest-type", kind, "--transfer", "copy",
            "--no-progress")
    assert "Verified 6 file(s) of 6 dataset(s) by size" in run("verify", repo, "--no-progress")
    rows = json.loads(run("query-datasets", repo, "raw", "--collections", "rawexpr",
                          "--format", "json"))
    Path(rows[0]["uri"]).unlink()
    with Path(rows[1]["uri"]).open("ab") as f:
        f.write(b"more")
    _flip_last_byte(Path(rows[2]["uri"]))  # same size: found only with a checksum
    result = CliRunner().invoke(cli, ["verify", str(repo), "--format", "json", "--no-progress"])
    assert result.exit_code == 1
    assert "2 of 6 dataset(s) have missing or changed files" in result.stderr
    found = {r["id"]: r for r in json.loads(result.stdout)}
    assert found.keys() == {rows[0]["id"], rows[1]["id"]}
    assert found[rows[0]["id"]]["problem"] == "missing"
    assert found[rows[1]["id"]]["problem"] == "changed"
    assert "bytes" in found[rows[1]["id"]]["error"]
    assert found[rows[1]["id"]]["uri"] == rows[1]["uri"]
    table = run("verify", repo, "raw", "--collections", "rawexpr", "--no-progress", ok=False)
    assert rows[0]["uri"] in table
    assert rows[2]["uri"] not in table
    run("prune-datasets", repo, "raw", "--collections", "rawexpr", "--unstore", "--no-confirm",
        "--where", f"exposure = {rows[0]['data_id']['exposure']} AND detector = "
        f"{rows[0]['data_id']['detector']}")
    run("prune-datasets", repo, "raw", "--collections", "rawexpr", "--no-confirm",
        "--where", f"exposure = {rows[1]['data_id']['exposure']} AND detector = "
        f"{rows[1]['data_id']['detector']}")
    assert "Verified 4 file(s) of 5 dataset(s)" in run("verify", repo, "--no-progress")

    summed = tmp_path / "summed"
    run("create", summed, "--checksum", "blake2b")
    run("ingest-simulated", summed, sim_dir, "--ingest-type", "raw", "--transfer", "copy",
        "--no-progress")
    assert "4 against a recorded checksum: all present" in run("verify", summed, "--no-progress")
    uri = json.loads(run("query-datasets", summed, "raw", "--collections", "rawexpr",
                         "--format", "json"))[0]["uri"]
    _flip_last_byte(Path(uri))
    table = run("verify", summed, "--no-progress", ok=False)
    assert uri in table
    assert "changed" in table


def test_export_import_retrieve(repo: Path, tmp_path: Path) -> None:
    """export then import into a new repository keeps ids; retrieve-artifacts copies files."""
    run("export", repo, tmp_path / "exp", "raw", "--collections", "rawexpr")
    run("create", tmp_path / "other")
    run("import", tmp_path / "other", tmp_path / "exp")
    a = json.loads(run("query-datasets", repo, "raw", "--collections", "rawexpr", "--format", "json"))
    b = json.loads(run("query-datasets", tmp_path / "other", "raw", "--collections", "rawexpr",
                       "--format", "json"))
    assert sorted(r["id"] for r in a) == sorted(r["id"] for r in b)
    run("retrieve-artifacts", repo, tmp_path / "out", "raw", "--collections", "rawexpr")
    assert len(list((tmp_path / "out").rglob("*.fits"))) == 4


def test_export_import_a_chain(repo: Path, tmp_path: Path) -> None:
    """export --collections CHAIN takes the chain's definition along; import makes it."""
    run("collection-chain", repo, "both", "rawexpr", "darkr")
    out = run("export", repo, tmp_path / "exp", "--collections", "both")
    assert "with chain(s) both" in out
    run("create", tmp_path / "other")
    run("import", tmp_path / "other", tmp_path / "exp")
    rows = json.loads(run("query-collections", tmp_path / "other", "--format", "json"))
    chain = next(r for r in rows if r["name"] == "both")
    assert chain["type"] == "CHAINED"
    assert "rawexpr" in json.dumps(chain)
    assert "darkr" in json.dumps(chain)
    run("certify-calibrations", repo, "darkr", "calib", "dark", "--begin-date", "2020-01-01")
    run("collection-chain", repo, "withcalib", "rawexpr", "calib")
    out = run("export", repo, tmp_path / "exp2", "--collections", "withcalib", ok=False)
    assert "--find-all" in out
    run("export", repo, tmp_path / "exp2", "--collections", "withcalib", "--find-all")
    run("create", tmp_path / "third")
    run("import", tmp_path / "third", tmp_path / "exp2")
    found = json.loads(run("query-datasets", tmp_path / "third", "dark", "--collections",
                           "withcalib", "--find-all", "--format", "json"))  # fmt: skip
    assert len(found) == 2
    run("create", tmp_path / "plain")
    run("import", tmp_path / "plain", tmp_path / "exp", "--no-chains")
    names = [r["name"] for r in json.loads(run("query-collections", tmp_path / "plain",
                                               "--format", "json"))]  # fmt: skip
    assert "both" not in names
    assert "rawexpr" in names


def test_export_collections_glob_takes_chains(repo: Path, tmp_path: Path) -> None:
    """export --collections takes glob patterns as the query does, and saves the chains they
    match (looking a pattern up as a collection name failed the export)."""
    run("collection-chain", repo, "both", "rawexpr", "darkr")
    out = run("export", repo, tmp_path / "exp", "raw", "--collections", "raw*,bo*")
    assert "Exported 4 dataset(s) with chain(s) both" in out
    run("create", tmp_path / "other")
    run("import", tmp_path / "other", tmp_path / "exp")
    rows = json.loads(run("query-collections", tmp_path / "other", "both", "--format", "json"))
    assert [r["type"] for r in rows] == ["CHAINED"]


def test_ingest_files_with_regex_and_header(repo: Path, sim_dir: Path) -> None:
    """ingest-files maps names and header keywords to data IDs; a mis-named file fails all."""
    files = sorted(sim_dir.glob("sim_exposure_*_array_*.fits"))
    run("register-dataset-type", repo, "rawcopy", "SpectralImage", "instrument", "exposure",
        "detector")
    run("ingest-files", repo, "rawcopy", "copies", *files, "--regex",
        r"sim_exposure_(?P<exposure>\d+)_array_", "--header-key", "detector=DETECTOR",
        "--data-id", "instrument=SPHEREx", "--transfer", "copy", "--no-progress")
    rows = json.loads(run("query-datasets", repo, "rawcopy", "--collections", "copies",
                          "--format", "json"))
    assert len(rows) == len(files)
    darks = sorted(sim_dir.glob("*dark*.fits"))
    out = run("ingest-files", repo, "rawcopy", "copies2", files[0], darks[0], "--regex",
              r"sim_exposure_(?P<exposure>\d+)_array_", "--header-key", "detector=DETECTOR",
              "--data-id", "instrument=SPHEREx", ok=False)
    assert darks[0].name in out
    assert "copies2" not in run("query-collections", repo)


def test_default_collections_after_certify(repo: Path, tmp_path: Path) -> None:
    """Without --collections every dataset is selected once, CALIBRATION collections or not;
    a first-match search of a CALIBRATION collection asks for --find-all."""
    run("certify-calibrations", repo, "darkr", "calib", "dark", "--begin-date", "2020-01-01")
    rows = json.loads(run("query-datasets", repo, "--format", "json"))
    assert sorted(r["dataset_type"] for r in rows) == ["dark"] * 2 + ["raw"] * 4
    assert len({r["id"] for r in rows}) == len(rows)
    run("export", repo, tmp_path / "exp")
    assert len(json.loads((tmp_path / "exp" / "export.json").read_text())["datasets"]) == 6
    run("retrieve-artifacts", repo, tmp_path / "out")
    assert len(list((tmp_path / "out").rglob("*.fits"))) == 6
    out = run("query-datasets", repo, "dark", "--collections", "calib", ok=False)
    assert "--find-all" in out
    assert "find_first" not in out
    assert len(json.loads(run("query-datasets", repo, "dark", "--collections", "calib",
                              "--find-all", "--format", "json"))) == 2
    # A pattern naming no calibration type searches first matches (it was "not registered").
    assert len(json.loads(run("query-datasets", repo, "ra*", "--collections", "rawexpr,calib",
                              "--format", "json"))) == 4  # fmt: skip
    assert "--find-all" in run("query-datasets", repo, "d*", "--collections", "calib", ok=False)


def test_query_datasets_in_empty_repository(tmp_path: Path) -> None:
    """A repository with no collections has no datasets to list (not an error)."""
    run("create", tmp_path / "r")
    assert "(no results)" in run("query-datasets", tmp_path / "r")
    assert json.loads(run("query-datasets", tmp_path / "r", "--format", "json")) == []


def test_certify_calibrations_bad_input(repo: Path) -> None:
    """Bad dates are usage errors naming the option; a failed certify creates no collection."""
    result = CliRunner().invoke(cli, ["certify-calibrations", str(repo), "darkr", "calib", "dark",
                                      "--begin-date", "yesterday"])
    assert result.exit_code == 2
    assert "--begin-date" in result.output
    assert "yesterday" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    out = run("certify-calibrations", repo, "darkr", "calib", "dark", "--begin-date",
              "2026-01-01", "--end-date", "2025-01-01", ok=False)
    assert "--end-date" in out
    out = run("certify-calibrations", repo, "darkr", "calib", "drak", ok=False)
    assert "dark" in out
    result = CliRunner().invoke(cli, ["certify-calibrations", str(repo), "darkr", "calib", "dark",
                                      "--end-date", "9999-12-31"])
    assert result.exit_code == 2, result.output
    assert "--end-date" in result.output
    assert "outside the range the registry stores" in result.output
    assert "calib" not in run("query-collections", repo)
    run("certify-calibrations", repo, "darkr", "calib", "dark", "--begin-date", "2025-01-01",
        "--end-date", "2025-06-01T12:00:00")
    assert "CALIBRATION" in run("query-collections", repo, "calib")


def test_invalid_regex_is_a_clear_error(repo: Path, sim_dir: Path) -> None:
    """A --regex that is not a valid regular expression is an error, not a traceback."""
    files = sorted(sim_dir.glob("sim_exposure_*_array_*.fits"))
    out = run("ingest-files", repo, "raw", "again", files[0], "--regex", r"array_(?P<detector>\d",
              "--data-id", "instrument=SPHEREx", ok=False)
    assert "Invalid regular expression" in out
    assert "Traceback" not in out
    out = run("ingest-simulated", repo, sim_dir, "--regex", "(", "--run", "again", ok=False)
    assert "Invalid regular expression '('" in out
    assert "again" not in run("query-collections", repo)


def test_register_dataset_type_unknown_storage_class(repo: Path) -> None:
    """A misspelt storage class is refused (it would only fail at the first put or get)."""
    out = run("register-dataset-type", repo, "flat", "SpectralImag", "instrument", "detector",
              ok=False)
    assert "SpectralImag" in out
    assert "SpectralImage" in out
    assert "flat" not in run("query-dataset-types", repo)
    run("register-dataset-type", repo, "flat", "SpectralImage", "instrument", "detector",
        "--is-calibration")


def test_os_errors_are_one_line_errors(repo: Path, tmp_path: Path) -> None:
    """A path that cannot be created (here under a plain file) is an error, not a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for args in (["create", blocker / "repo"],
                 ["simulate", blocker / "sim", "--exposures", "1", "--size", "16"],
                 ["export", repo, blocker / "exp", "raw", "--collections", "rawexpr"],
                 ["retrieve-artifacts", repo, blocker / "out", "raw", "--collections", "rawexpr"]):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 1, (args, result.output)
        assert isinstance(result.exception, SystemExit), (args, result.exception)
        assert "Not a directory" in result.output
        assert str(blocker) in result.output


def test_output_piped_to_a_closed_reader_stops_quietly(repo: Path) -> None:
    """``spherex-dask query-datasets ... | head -1``: no 'Error: Broken pipe', no traceback;
    exit status 141 (128 + SIGPIPE), as a shell reports for other tools."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "spherex_dask", "query-datasets", str(repo)],
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr.decode()
    assert done.stderr.decode() == ""


TERMINATED_INGEST = """
import os, signal, sys, time
from spherex_dask.cli import main
from spherex_dask.registry import Registry

def terminated(self, *args, **kwargs):  # the files are transferred; the registry is next
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)  # the handler raises here; without one, SIGTERM ends the process

Registry.import_datasets = terminated
sys.argv = ["spherex-dask", "ingest-simulated", *sys.argv[1:]]
main()
"""


def test_sigterm_during_an_ingest_undoes_it(sim_dir: Path, tmp_path: Path) -> None:
    """SIGTERM (kill, scancel, a batch time limit) between transferring and registering: the
    ingest removes the files it transferred, says it was terminated and exits 143; the
    retry then works."""
    import subprocess
    import sys

    root = tmp_path / "repo"
    run("create", root)
    args = [str(root), str(sim_dir), "--ingest-type", "dark", "--transfer", "copy",
            "--no-progress"]  # fmt: skip
    result = subprocess.run([sys.executable, "-c", TERMINATED_INGEST, *args],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 143, result.stdout + result.stderr
    assert "Terminated (SIGTERM): the command stopped before it finished." in result.stderr
    assert not list(root.rglob("*.fits"))
    assert "darkr" not in run("query-collections", root)
    run("ingest-simulated", *args)
    assert len(json.loads(run("query-datasets", root, "dark", "--collections", "darkr",
                              "--format", "json"))) == 2


SIGNALLED_IMPORT = """
import os, signal, sys, threading, time
import spherex_dask.io._ingest as ingest
from spherex_dask.cli import main

copied = []
lock = threading.Lock()
real_transfer = ingest.transfer

def transfer(*args, **kwargs):  # the second copy sends the signal; the others go on
    result = real_transfer(*args, **kwargs)
    with lock:
        copied.append(args[1])
        if len(copied) == 2:
            os.kill(os.getpid(), int(os.environ["SIGNAL"]))
    time.sleep(0.2)  # copies still under way when the main thread gets the signal
    return result

ingest.transfer = transfer
sys.argv = ["spherex-dask", "import", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("signum", "status", "message"),
    [(signal.SIGINT, 130, "Interrupted: "), (signal.SIGTERM, 143, r"Terminated \(SIGTERM\): ")],
)
def test_a_signal_during_an_import_undoes_it(
    repo: Path, tmp_path: Path, signum: int, status: int, message: str
) -> None:
    """Ctrl-C or SIGTERM, really sent, while an import copies files on its threads: the
    copies made and those under way are removed, nothing is registered, the command says so
    and exits 130 or 143 (a shell's statuses for those signals); the retry imports all."""
    import os
    import re
    import subprocess
    import sys

    run("export", repo, tmp_path / "exp", "--collections", "rawexpr,darkr")
    target = tmp_path / "other"
    run("create", target)
    result = subprocess.run(
        [sys.executable, "-c", SIGNALLED_IMPORT, str(target), str(tmp_path / "exp")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "SIGNAL": str(int(signum))},
    )  # fmt: skip
    assert result.returncode == status, result.stdout + result.stderr
    assert re.search(message + "the command stopped before it finished", result.stderr)
    assert "Traceback" not in result.stderr
    assert not [p for p in target.rglob("*") if p.is_file() and p.suffix == ".fits"]
    assert run("query-collections", target).strip() == "(no results)"
    run("import", target, tmp_path / "exp")
    assert len(json.loads(run("query-datasets", target, "--collections", "rawexpr,darkr",
                              "--format", "json"))) == 6
