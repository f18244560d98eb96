import pytest
from hypothesis import given
from hypothesis import strategies as st

from allotment.core.quantity import (
    UNLIMITED,
    UNLIMITED_RAW,
    ZERO,
    Quantity,
    format_quantity,
    parse_quantity,
)
from allotment.core.resources import ResourceKey, ResourceVector, parse_requests


@pytest.mark.parametrize(
    ("text", "resource", "raw"),
    [
        ("4", "gpu", 4000),
        ("0.5", "gpu", 500),
        ("0.1", "gpu", 100),
        (".5", "gpu", 500),
        ("1.5", "cpu", 1500),
        ("500m", "cpu", 500),
        (" 2 ", "cpu", 2000),
        ("16Gi", "memory", 16 * 2**30),
        ("512Mi", "memory", 512 * 2**20),
        ("1.5Gi", "memory", 1536 * 2**20),
        ("16GiB", "memory", 16 * 2**30),
        ("2G", "memory", 2 * 10**9),
        ("1024", "memory", 1024),
        (4, "gpu", 4000),
        (0.5, "gpu", 500),
        ("0", "gpu", 0),
        ("unlimited", "gpu", UNLIMITED_RAW),
        ("Unlimited", "memory", UNLIMITED_RAW),
        (float("inf"), "gpu", UNLIMITED_RAW),
    ],
)
def test_parse(text, resource, raw):
    assert parse_quantity(text, resource).raw == raw


@pytest.mark.parametrize(
    ("text", "resource", "message"),
    [
        ("", "gpu", "empty gpu quantity"),
        ("-1", "gpu", "cannot be negative"),
        ("abc", "gpu", "cannot read 'abc'"),
        ("4Gi", "gpu", "unexpected unit 'Gi'"),
        ("16Qi", "memory", "unknown memory unit 'Qi'"),
        ("0.0001", "gpu", "finer than one 0.001 GPU"),
        ("0.5", "memory", "finer than one byte"),
        ("1", "disk", "unknown resource 'disk'"),
        (-3, "cpu", "cannot be negative"),
        # a JSON true, NaN, -inf or a list is a ValueError too: every caller turns ValueError into the field's error
        (True, "gpu", "gpu quantity must be a number or text, got True"),
        (float("nan"), "gpu", "gpu quantity must be a number, got nan"),
        (float("-inf"), "cpu", "cpu quantity must be a number, got -inf"),
        ([4], "memory", "memory quantity must be a number or text, got list"),
    ],
)
def test_parse_errors_name_the_problem(text, resource, message):
    with pytest.raises(ValueError, match=message):
        parse_quantity(text, resource)


@pytest.mark.parametrize(
    ("raw", "resource", "text"),
    [
        (4000, "gpu", "4"),
        (500, "gpu", "0.5"),
        (1250, "cpu", "1.25"),
        (16 * 2**30, "memory", "16Gi"),
        (1536 * 2**20, "memory", "1536Mi"),
        (1000, "memory", "1000"),
        (0, "gpu", "0"),
        (UNLIMITED_RAW, "gpu", "unlimited"),
    ],
)
def test_format(raw, resource, text):
    assert format_quantity(Quantity(raw), resource) == text


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (lambda: Quantity(3) + Quantity(4), Quantity(7)),
        (lambda: Quantity(3) - Quantity(4), ZERO),  # saturates at zero
        (lambda: UNLIMITED + Quantity(4), UNLIMITED),
        (lambda: UNLIMITED - Quantity(4), UNLIMITED),
        (lambda: Quantity(4) - UNLIMITED, ZERO),
        (lambda: Quantity(UNLIMITED_RAW - 1) + Quantity(5), UNLIMITED),  # saturates at unlimited
        (lambda: Quantity(3) * 4, Quantity(12)),
        (lambda: UNLIMITED * 2, UNLIMITED),
        (lambda: UNLIMITED * 0, ZERO),
    ],
)
def test_saturating_arithmetic(expr, expected):
    assert expr() == expected


def test_unlimited_minus_unlimited_is_refused():
    with pytest.raises(ValueError, match="undefined"):
        _ = UNLIMITED - UNLIMITED


def test_ordering_and_immutability():
    assert Quantity(1) < Quantity(2) < UNLIMITED
    assert max(Quantity(5), UNLIMITED) is UNLIMITED
    with pytest.raises(AttributeError):
        Quantity(1).raw = 5  # type: ignore[misc]
    with pytest.raises(ValueError):
        Quantity(-1)


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["gpu", "cpu", "memory"]))
def test_format_parse_round_trip(raw, resource):
    q = Quantity(raw)
    assert parse_quantity(format_quantity(q, resource), resource) == q


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**9))
def test_subtraction_never_negative_and_addition_inverts(a, b):
    assert (Quantity(a) - Quantity(b)).raw == max(a - b, 0)
    assert (Quantity(a) + Quantity(b)) - Quantity(b) == Quantity(a)


def test_resource_vector_helpers():
    a = ResourceVector({("h100", "gpu"): Quantity(4000)})
    b = ResourceVector({("h100", "gpu"): Quantity(1000), ("h100", "cpu"): Quantity(2000)})
    assert (a + b)[("h100", "gpu")] == Quantity(5000)
    assert (a - b)[("h100", "gpu")] == Quantity(3000)
    assert (b - a)[("h100", "gpu")] == ZERO
    assert a.fits({ResourceKey("h100", "gpu"): Quantity(4000)})
    assert not b.fits({ResourceKey("h100", "gpu"): Quantity(4000)})
    assert "4 gpu in pool h100" in a.describe()


def test_parse_requests_drops_zero_and_refuses_unlimited():
    assert parse_requests({"gpu": "0.5", "cpu": "0"}) == {"gpu": Quantity(500)}
    with pytest.raises(ValueError, match="unlimited gpu"):
        parse_requests({"gpu": "unlimited"})
