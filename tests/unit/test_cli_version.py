"""`allot --version` prints the version and exits 0 without contacting a server."""

from __future__ import annotations

import pytest

from allotment import __version__
from allotment.cli.main import main


def test_version_prints_and_exits(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"allot {__version__} (Python ")
