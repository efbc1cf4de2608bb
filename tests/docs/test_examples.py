# SPDX-License-Identifier: BSD-3-Clause
"""Every ``bash`` and ``python`` example of README.md and docs/ runs, in order, per file.

Each Markdown file runs in its own empty directory (with ``pipelines/`` of the repository
linked in, as in a clone), with the test environment's ``bin`` first on ``PATH`` so that
``spherex-dask`` and ``python`` are the installed ones, and ``HOME`` pointing into that
directory so that no example touches the real home. Blocks marked ``<!-- skip-test: reason
-->`` are not run and are listed at the end of the test session. See ``markdown_blocks.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pytest

from .markdown_blocks import Block, parse_blocks

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("markdown_blocks.py")
MARKDOWN = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")], key=lambda p: p.relative_to(ROOT)
)
#: The PostgreSQL server the PostgreSQL how-to's examples use (the CI server).
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Prefix of the schemas the PostgreSQL how-to creates (dropped before and after).
PG_SCHEMA_PREFIX = "spherex_docs"

Environment = dict[str, str]


def _unavailable(message: str) -> None:
    """Skip, or fail when ``CI=true`` (where every real part is mandatory)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _drop_doc_schemas() -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.begin() as conn:
            names = conn.execute(
                sa.text(
                    "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"
                ),
                {"p": f"{PG_SCHEMA_PREFIX}%"},
            ).scalars()
            for name in list(names):
                conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        engine.dispose()


@contextmanager
def postgresql_setup(env: Environment) -> Iterator[None]:
    """The CI PostgreSQL server, without schemas left over from an earlier run."""
    try:
        _drop_doc_schemas()
    except Exception as err:
        _unavailable(f"PostgreSQL is not reachable at {PG_URL} ({type(err).__name__}).")
    try:
        yield
    finally:
        _drop_doc_schemas()


@contextmanager
def s3_setup(env: Environment) -> Iterator[None]:
    """A moto S3 server on loopback, found by s3fs through the standard AWS variables."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env.update(
            AWS_ENDPOINT_URL=f"http://{host}:{port}",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        yield
    finally:
        server.stop()


#: Files whose examples need a server, and the context that provides it.
SETUPS: dict[str, Callable[[Environment], AbstractContextManager[None]]] = {
    "docs/howto/postgresql.md": postgresql_setup,
    "docs/howto/s3.md": s3_setup,
}


def _environment(workdir: Path) -> Environment:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["HOME"] = str(workdir / "home")
    env["MPLBACKEND"] = "Agg"
    env.pop("SPHEREX_DASK_REPO", None)
    return env


def _report(request: pytest.FixtureRequest, blocks: list[Block]) -> None:
    for block in blocks:
        if block.action == "skip":
            request.node.user_properties.append(
                ("skipped_block", f"{block.where}: {block.argument}")
            )


#: How many Markdown files run at the same time (each in its own subprocess).
PARALLEL = 3
#: Seconds one file's examples may take before the test gives up on them.
FILE_TIMEOUT = 600


def _run_file(markdown: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run the examples of ``markdown`` in ``workdir`` (inside its server setup, if any)."""
    (workdir / "home").mkdir(parents=True)
    (workdir / "pipelines").symlink_to(ROOT / "pipelines", target_is_directory=True)
    env = _environment(workdir)
    setup = SETUPS.get(markdown.relative_to(ROOT).as_posix())
    with setup(env) if setup else nullcontext():
        return subprocess.run(
            [sys.executable, str(RUNNER), str(markdown), str(workdir)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=FILE_TIMEOUT,
        )


@pytest.fixture(scope="module")
def example_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Path, Future[subprocess.CompletedProcess[str]]]]:
    """Start the files selected for this session, a few at a time, as soon as one is needed."""
    selected = [
        item.callspec.params["markdown"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_examples_run"
    ]
    pool = ThreadPoolExecutor(max_workers=PARALLEL)
    futures = {}
    try:
        for markdown in selected:
            if any(b.action == "run" for b in parse_blocks(markdown)):
                workdir = tmp_path_factory.mktemp(markdown.stem) / "work"
                futures[markdown] = pool.submit(_run_file, markdown, workdir)
        yield futures
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after -x or Ctrl-C, start no more


@pytest.mark.parametrize("markdown", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(
    markdown: Path,
    example_runs: dict[Path, Future[subprocess.CompletedProcess[str]]],
    request: pytest.FixtureRequest,
) -> None:
    """The file's examples run in order in a fresh directory, as a newcomer would paste them."""
    blocks = parse_blocks(markdown)
    _report(request, blocks)
    if markdown not in example_runs:
        return
    result = example_runs[markdown].result()  # re-raises a skip or failure of the setup
    if result.returncode != 0:
        pytest.fail(
            f"An example of {markdown.relative_to(ROOT)} failed.\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr}",
            pytrace=False,
        )


def test_every_skip_has_a_reason() -> None:
    """A skip-test directive names why the block cannot run here."""
    for markdown in MARKDOWN:
        for block in parse_blocks(markdown):
            if block.action == "skip":
                assert len(block.argument) > 10, f"{block.where}: give a reason to skip the block"


def test_parse_blocks_honours_directives(tmp_path: Path) -> None:
    """Runnable languages run, skip-test and file directives apply to the next fence only."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# t\n\n```bash\necho a\n```\n\n<!-- skip-test: needs a SLURM cluster -->\n```bash\n"
        "sbatch x\n```\n\n<!-- file: pkg/m.py -->\n```python\nX = 1\n```\n\n```yaml\na: 1\n```\n"
        "\n```python\nprint(1)\n```\n"
    )
    blocks = parse_blocks(doc)
    assert [(b.language, b.action, b.argument) for b in blocks] == [
        ("bash", "run", ""),
        ("bash", "skip", "needs a SLURM cluster"),
        ("python", "file", "pkg/m.py"),
        ("yaml", "ignore", ""),
        ("python", "run", ""),
    ]
    assert blocks[0].code == "echo a\n"
    assert blocks[0].line == 3


def test_parse_blocks_rejects_bad_markdown(tmp_path: Path) -> None:
    """An unclosed fence and a directive without its fence are errors, not silent skips."""
    doc = tmp_path / "doc.md"
    doc.write_text("```bash\necho a\n")
    with pytest.raises(ValueError, match="never closed"):
        parse_blocks(doc)
    doc.write_text("<!-- skip-test: needs a SLURM cluster -->\nsome text\n```bash\nx\n```\n")
    with pytest.raises(ValueError, match="not followed by a fence"):
        parse_blocks(doc)


def test_runner_stops_at_the_first_failure(tmp_path: Path) -> None:
    """A failing block fails the file (its location is printed) and later blocks do not run."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```python\nx = 2\n```\n\n```python\nassert x == 2\nopen('ok', 'w').close()\n```\n\n"
        "```bash\nfalse\n```\n\n```bash\ntouch never\n```\n"
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = subprocess.run(
        [sys.executable, str(RUNNER), str(doc), str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"FAILED ({doc}:10" in result.stdout
    assert (workdir / "ok").exists()
    assert not (workdir / "never").exists()
