"""Trace readers: generic CSV with column mapping, Philly with its capacity file, bad rows by line number."""

from __future__ import annotations

import io

import pytest

from allotment.simulation.traces import (
    Columns,
    TraceError,
    parse_period,
    read_capacities,
    read_csv,
    read_philly,
)


def lines(text: str) -> io.StringIO:
    return io.StringIO(text.lstrip(), newline="")


def test_generic_csv_with_default_columns_and_quantities():
    jobs = read_csv(lines("""
submit,duration,gpu,cpu,memory,quota,priority_class,pool
2026-10-01T00:00:10,60,0.5,500m,16Gi,research,training,a100
2026-10-01T00:00:00,30,2,4,,dev,,
"""))
    assert [j.quota for j in jobs] == ["dev", "research"]  # sorted by submission
    dev, research = jobs
    assert (dev.gpu, dev.cpu, dev.memory, dev.priority_class, dev.pool, dev.line) == (2000, 4000, 0, None, None, 3)
    assert (research.gpu, research.cpu, research.memory) == (500, 500, 16 * 2**30)
    assert research.submit - dev.submit == 10 and research.duration == 60
    assert (research.priority_class, research.pool) == ("training", "a100")


def test_column_mapping_and_an_end_column_instead_of_a_duration():
    cols = Columns(submit="queued", duration=None, end="ended", gpu="gpus", quota="team")
    jobs = read_csv(lines("queued,ended,gpus,team\n100,160,1,vision\n"), cols)
    assert (jobs[0].submit, jobs[0].duration, jobs[0].gpu, jobs[0].quota) == (100.0, 60.0, 1000, "vision")


def test_bad_rows_are_all_reported_with_their_line_numbers():
    with pytest.raises(TraceError) as err:
        read_csv(lines("""
submit,duration,gpu,quota
0,10,1,a
yesterday,10,1,a
0,-5,1,a
0,10,lots,a
0,10,1
0,10,1,
"""))
    assert [n for n, _ in err.value.problems] == [3, 4, 5, 6, 7]
    text = str(err.value)
    assert "5 bad row(s)" in text and "line 3: submit 'yesterday' is not a time" in text
    assert "line 4: duration gives a runtime of -5.0 s" in text


def test_a_missing_required_column_names_it_and_the_header():
    with pytest.raises(TraceError) as err:
        read_csv(lines("when,duration,gpu,team\n0,1,1,a\n"))
    assert "no column 'submit', 'quota' in the header (when, duration, gpu, team)" in str(err.value)


def test_empty_file():
    with pytest.raises(TraceError, match="the file is empty"):
        read_csv(lines(""))


def test_philly_rows_and_period():
    text = """
timestamp,duration,num_gpus,gpu_time,cluster
2017-10-09 07:01:55,66.0,1,66.0,11cb48
2017-09-30 23:59:59,10.0,8,80.0,6214e9
2017-10-01 00:00:00,10.0,8,80.0,6214e9
"""
    jobs = read_philly(lines(text), period=parse_period("2017-10-01..2017-11-30"))
    assert [(j.quota, j.gpu) for j in jobs] == [("6214e9", 8000), ("11cb48", 1000)]
    kept = read_philly(lines(text), keep=["11cb48"])
    assert [j.quota for j in kept] == ["11cb48"]


def test_philly_capacities_in_gpus_and_their_errors():
    assert read_capacities(lines("vc,node num\na,64\nb,8\n")) == {"a": 512, "b": 64}
    with pytest.raises(TraceError, match="line 3: node num"):
        read_capacities(lines("vc,node num\na,64\nb,many\n"))
    with pytest.raises(TraceError, match="the header must be"):
        read_capacities(lines("name,nodes\na,1\n"))


def test_period_bounds():
    lo, hi = parse_period("2017-10-01..2017-11-30")
    assert hi - lo == 61 * 86400  # the last day is included
    for bad in ("2017-10-01", "2017-11-30..2017-10-01", "soon..later"):
        with pytest.raises(ValueError):
            parse_period(bad)
