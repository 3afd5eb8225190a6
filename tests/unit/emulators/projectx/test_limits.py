"""The JSON limits checked before parsing: size, nesting, number length and exponent, and what stays accepted."""

from __future__ import annotations

from decimal import Decimal

import pytest

from propdesk.emulators.projectx.limits import MAX_EXPONENT, JsonLimitError, JsonLimits, loads

LIMITS = JsonLimits(max_bytes=8192, max_depth=8, max_number_chars=40)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"accountId":1E+300000}', "exponent"),
        ('{"accountId":1e-100}', "exponent"),
        ('{"accountId":' + "1" * 4301 + "}", "longer than 40"),
        ('{"p":0.' + "1" * 40 + "}", "longer than 40"),
        ("[" * 9 + "]" * 9, "nesting deeper than 8"),
        ('{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}', "nesting deeper than 8"),
        ('{"a": NaN}', "NaN"),
        ('{"a": -Infinity}', "-Infinity"),
        ('{"a": "unterminated', "unterminated string"),
        ('{"a": 1} trailing', "not JSON"),
        ('{"x":"' + "a" * 9000 + '"}', "more than the limit of 8192"),
    ],
)
def test_refused_with_what_was_wrong(text: str, why: str) -> None:
    with pytest.raises(JsonLimitError, match=why):
        loads(text, LIMITS)


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(JsonLimitError, match="not UTF-8 at byte 1"):
        loads(b'{\xff"a": 1}', LIMITS)


def test_brackets_quotes_and_digits_inside_strings_do_not_count() -> None:
    tag = '[[[[[[[[[[ \\"{{{{{{{{{{ ' + "9" * 60
    assert loads('{"customTag": "' + tag + '"}', LIMITS) == {"customTag": tag.replace('\\"', '"')}


def test_within_the_limits_floats_are_exact_decimals() -> None:
    body = f'{{"a": [1, -2.5, 1E+{MAX_EXPONENT}, 6335.250000000], "b": {{"c": [[[[[true]]]]]}}, "d": null}}'
    assert loads(body, LIMITS) == {
        "a": [1, Decimal("-2.5"), Decimal(f"1E+{MAX_EXPONENT}"), Decimal("6335.250000000")],
        "b": {"c": [[[[[True]]]]]},
        "d": None,
    }
    assert loads("[1.5]", LIMITS, exact=False) == [1.5]


def test_an_unterminated_string_of_escaped_quotes_is_refused_at_its_start() -> None:
    # every quote here is escaped: a scan that retried from each quote would be quadratic in the length
    with pytest.raises(JsonLimitError, match="unterminated string at offset 0"):
        loads('"' + '\\"' * 1500, LIMITS)
