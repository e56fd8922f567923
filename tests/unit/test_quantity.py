"""One size parser with Kubernetes semantics for profiles, atom jobs and Dask options."""

from __future__ import annotations

import pytest

from jupyter_ext.quantity import MAX_BYTES, QuantityError, parse_quantity


@pytest.mark.parametrize(
    "text, nbytes",
    [
        ("4G", 4 * 10**9), ("4Gi", 4 * 2**30), ("512M", 512 * 10**6), ("512Mi", 512 * 2**20),
        ("1k", 1000), ("1K", 1000), ("1Ki", 1024), ("2T", 2 * 10**12), ("2Ti", 2 * 2**40),
        ("1P", 10**15), ("1Pi", 2**50), ("3E", 3 * 10**18), ("3Ei", 3 * 2**60),
        ("1.5Gi", 3 * 2**29), ("0.5Ki", 512), (".5Ki", 512), (" 128Mi ", 128 * 2**20),
        ("1024", 1024), ("1.5", 2),  # bare numbers are bytes; fractions round up
    ],
)
def test_kubernetes_suffixes(text, nbytes):
    assert parse_quantity(text) == nbytes


def test_numbers_are_bytes_unless_the_field_says_otherwise():
    assert parse_quantity(1024) == 1024
    assert parse_quantity(4e9) == 4 * 10**9
    assert parse_quantity(2048, bare_unit="Mi") == 2048 * 2**20
    assert parse_quantity("2048", bare_unit="Mi") == 2048 * 2**20
    assert parse_quantity(1.5, bare_unit="Gi") == 3 * 2**29
    # a suffix always wins over the bare unit
    assert parse_quantity("4G", bare_unit="Mi") == 4 * 10**9


@pytest.mark.parametrize(
    "value",
    ["4 gigs", "4GB", "4GiB", "4g", "4 G", "-1Gi", "+1Gi", "1e9", "", "G", "1.Gi", "0x10",
     True, None, [4], float("nan"), float("inf"), -5],
)
def test_garbage_is_refused_with_a_hint(value):
    with pytest.raises(QuantityError) as err:
        parse_quantity(value)
    message = str(err.value)
    assert "size" in message
    if not isinstance(value, int | float) or isinstance(value, bool):
        assert "4Gi" in message  # says what is accepted


def test_absurd_sizes_are_refused():
    with pytest.raises(QuantityError, match="not a size"):
        parse_quantity("9" * 400)  # too long to be a size at all
    with pytest.raises(QuantityError, match="absurdly large"):
        parse_quantity(10**400)
    with pytest.raises(QuantityError, match="absurdly large"):
        parse_quantity("8Ei")
    assert parse_quantity(str(MAX_BYTES)) == MAX_BYTES
    with pytest.raises(QuantityError, match="absurdly large"):
        parse_quantity(str(MAX_BYTES + 1))


def test_quantity_error_is_a_value_error():
    assert issubclass(QuantityError, ValueError)
    with pytest.raises(ValueError, match="bare_unit"):
        parse_quantity(1, bare_unit="GB")
