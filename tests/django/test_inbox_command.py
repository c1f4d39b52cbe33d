"""``manage.py kreuzberg_inbox``'s numbers follow the command line's rule, in the command's own words."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kreuzberg_webhooks.cli.helpers import positive_int
from kreuzberg_webhooks.django.inbox.management.commands.kreuzberg_inbox import _positive_int

texts = st.one_of(
    st.integers(-(10**6), 10**6).map(str), st.text(max_size=8), st.sampled_from(["0", " 7 ", "+3", "1e3", ""])
)


@given(texts)
def test_the_limit_takes_what_the_command_line_takes_and_refuses_the_rest_in_one_sentence(text: str) -> None:
    try:
        expected = positive_int(text)
    except argparse.ArgumentTypeError:
        with pytest.raises(argparse.ArgumentTypeError) as refused:
            _positive_int(text)
        assert str(refused.value) == f"{text} is not a positive whole number"
    else:
        assert _positive_int(text) == expected >= 1
