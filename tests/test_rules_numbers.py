"""rules.num: the shortcut for whole floats gives what rounding gives (value and type)."""
from __future__ import annotations

import math

from hypothesis import given, strategies as st

from rxgate.rules import num


def reference(x, places=2):
    r = round(x, places)
    i = int(r)
    return i if r == i else r


@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                 st.integers(-10**6, 10**6).map(float), st.integers(-10**20, 10**20)),
       st.integers(0, 6))
def test_num_is_rounding(x, places):
    got, want = num(x, places), reference(x, places)
    assert got == want and type(got) is type(want) and repr(got) == repr(want)


def test_num_edges():
    for x in (0.0, -0.0, 70.0, 1e300, -1e300, 2.0 ** 53, 5e-324, 0.5, 1.005, True):
        assert repr(num(x)) == repr(reference(x))
    for bad in (math.inf, math.nan):
        for f in (num, reference):
            try:
                f(bad)
            except (OverflowError, ValueError) as e:
                err = type(e)
            else:
                err = None
            assert err is not None
