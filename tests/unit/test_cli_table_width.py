"""Tables printed into a pipe or a file (scripts, grep, tests) keep whole cells: Rich would otherwise size them to 80
columns and cut headers ("Preempti…"); COLUMNS, when set, still wins; a terminal gets its own width."""

from __future__ import annotations

from allotment.cli import output

COLUMNS = [(f"c{i}", f"Heading number {i}") for i in range(9)]
ROW = {f"c{i}": f"value-{i}-0123456789" for i in range(9)}


def printed(monkeypatch, capsys, columns: str | None) -> str:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    output.table([ROW], COLUMNS)
    return capsys.readouterr().out


def test_piped_tables_keep_every_header_and_cell_whole(monkeypatch, capsys):
    out = printed(monkeypatch, capsys, None)
    assert "…" not in out
    for i in range(9):
        assert f"Heading number {i}" in out and f"value-{i}-0123456789" in out


def test_columns_set_by_the_caller_still_bounds_the_width(monkeypatch, capsys):
    out = printed(monkeypatch, capsys, "60")
    assert max(len(line) for line in out.splitlines()) <= 60


def test_a_width_given_for_one_table_does_not_stay_and_piped_values_stay_whole(monkeypatch, capsys):
    printed(monkeypatch, capsys, "60")
    monkeypatch.delenv("COLUMNS")
    output.show({"resources": "gpu 8, cpu 16 on 2 nodes " + "x" * 120}, as_json=False)
    out = capsys.readouterr().out
    assert "on 2 nodes " + "x" * 120 in out
