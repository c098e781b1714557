"""Running the command line in-process, as the CLI tests need it."""
from __future__ import annotations

from engine.__main__ import main


def refused(argv: list[str], capsys) -> str:
    """The one stderr line of a command refused with exit code 2."""
    code = main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, lines)
    return lines[0]
