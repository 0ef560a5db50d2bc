from __future__ import annotations

import pytest

from evaluators import estimate, wilson_interval


def test_wilson_matches_published_values() -> None:
    # Reference values from the closed-form Wilson score interval at z = 1.96.
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(48, 48)
    assert high == 1.0 and low == pytest.approx(0.9259, abs=1e-4)


def test_estimate_of_nothing_is_empty() -> None:
    empty = estimate(0, 0)
    assert empty.value is None and empty.ci is None and empty.n == 0
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
