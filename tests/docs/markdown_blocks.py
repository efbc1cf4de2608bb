# SPDX-License-Identifier: BSD-3-Clause
"""Find the code blocks of a Markdown file and run them in order, like a reader pasting them.

Imported by ``test_examples.py`` (parsing) and run as a script in a subprocess (execution)::

    python markdown_blocks.py FILE.md WORKDIR

Fenced blocks tagged ``bash`` (or ``sh``/``shell``) run in ``bash -eu -o pipefail`` and blocks
tagged ``python`` run in one Python namespace shared by the file's Python blocks (as in a
notebook), all with WORKDIR as the current directory. An HTML comment on the line just before
a fence changes that:

``<!-- skip-test: REASON -->``
    the block is not run (the test reports the reason);
``<!-- file: NAME -->``
    the block's text is written to WORKDIR/NAME instead of being run (any language).

Other blocks (``yaml``, ``text``, ...) are left alone.
"""

from __future__ import annotations

import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "parse_blocks", "run_blocks"]

RUNNABLE = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<key>skip-test|file)\s*:\s*(?P<value>.*?)\s*-->\s*$")
#: Seconds one block may take before it counts as hung.
BLOCK_TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    """A fenced code block and what to do with it.

    ``action`` is ``"run"``, ``"skip"``, ``"file"`` or ``"ignore"``; ``argument`` is the skip
    reason or the file name.
    """

    path: Path
    line: int
    language: str
    code: str
    action: str
    argument: str = ""

    @property
    def where(self) -> str:
        """``file.md:LINE`` of the opening fence."""
        return f"{self.path}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of ``path`` in order, with their directives applied.

    Raises
    ------
    ValueError
        For an unclosed fence, or a directive not followed by a fence.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    directive: tuple[str, str, int] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _FENCE.match(line)
        if match is None:
            found = _DIRECTIVE.match(line)
            if directive is not None and line.strip():
                raise ValueError(
                    f"{path}:{directive[2]}: {directive[0]} is not followed by a fence."
                )
            if found is not None:
                directive = (found["key"], found["value"], index + 1)
            index += 1
            continue
        fence, language = match["fence"], (match["info"].split() or [""])[0].lower()
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{index + 1}: the code fence is never closed.")
        code = "\n".join(_dedent(lines[index + 1 : end], len(match["indent"]))) + "\n"
        blocks.append(_block(Path(path), index + 1, language, code, directive))
        directive = None
        index = end + 1
    return blocks


def _dedent(lines: list[str], indent: int) -> list[str]:
    return [line[indent:] if line[:indent].isspace() else line for line in lines]


def _block(
    path: Path, line: int, language: str, code: str, directive: tuple[str, str, int] | None
) -> Block:
    if directive is not None and directive[0] == "file":
        return Block(path, line, language, code, "file", directive[1])
    if language not in RUNNABLE:
        return Block(path, line, language, code, "ignore")
    if directive is not None:
        return Block(path, line, language, code, "skip", directive[1])
    return Block(path, line, language, code, "run")


def run_blocks(blocks: list[Block], workdir: Path) -> int:
    """Run (or write) every block in order in ``workdir``; stop at the first failure.

    Returns 0 when all ran, 1 otherwise (after printing the failing block and its output).
    """
    namespace: dict[str, object] = {"__name__": "__main__"}
    for block in blocks:
        if block.action == "file":
            target = workdir / block.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            print(f"--- wrote {block.argument} ({block.where})", flush=True)
        elif block.action == "run" and not _run_block(block, workdir, namespace):
            return 1
    return 0


def _run_block(block: Block, workdir: Path, namespace: dict[str, object]) -> bool:
    print(f"--- {RUNNABLE[block.language]} block at {block.where}", flush=True)
    if RUNNABLE[block.language] == "bash":
        result = subprocess.run(
            ["bash", "-eu", "-o", "pipefail", "-c", block.code],
            cwd=workdir,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            print(f"FAILED ({block.where}, exit status {result.returncode}):\n{block.code}")
            return False
        return True
    try:
        exec(compile(block.code, block.where, "exec"), namespace)
    except BaseException:  # a SystemExit from the example counts as a failure too
        print(f"FAILED ({block.where}):\n{block.code}\n{traceback.format_exc()}")
        return False
    return True


def main(argv: list[str]) -> int:
    """``markdown_blocks.py FILE.md WORKDIR``: run the file's blocks in WORKDIR."""
    markdown, workdir = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    sys.path.insert(0, str(workdir))  # like `python` started in WORKDIR
    import os

    os.chdir(workdir)
    return run_blocks(parse_blocks(markdown), workdir)


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.exit(main(sys.argv[1:]))
