"""evaluators.agreement against published worked examples, degenerate cases and seeding."""

from __future__ import annotations

import pytest

from evaluators.agreement import (
    SAFETY_RISKY,
    agreement,
    disagreement,
    panel_alpha,
    panel_verdict,
)


def _from_table(table: list[list[int]], labels: list[int]) -> tuple[dict[str, int], dict[str, int]]:
    """Two label sources whose confusion matrix (rows a, columns b) is ``table``."""
    a: dict[str, int] = {}
    b: dict[str, int] = {}
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            for _ in range(count):
                key = f"item-{len(a)}"
                a[key], b[key] = labels[i], labels[j]
    return a, b


def test_cohens_yes_no_example_gives_kappa_0_4() -> None:
    # Wikipedia, "Cohen's kappa", worked example: 50 grant proposals read by A and B;
    # both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> p_o = 0.7, p_e = 0.5, κ = 0.4.
    a, b = _from_table([[20, 5], [10, 15]], [1, 0])
    result = agreement(a, b, scale=(0, 1), resamples=200)
    assert result.n == 50
    assert result.exact.value == pytest.approx(0.7)
    assert result.kappa.value == pytest.approx(0.4)
    # rows a, columns b, in scale order (0 = no, 1 = yes)
    assert result.confusion == [[15, 10], [5, 20]]
    assert result.kappa.ci is not None
    assert result.kappa.ci[0] < 0.4 < result.kappa.ci[1]


@pytest.mark.parametrize(
    ("table", "kappa"),
    [
        # Wikipedia, "Cohen's kappa", "Same percentages but different numbers": both tables have
        # 60% agreement, and κ = 0.1304 and 0.2593.
        ([[45, 15], [25, 15]], 0.1304),
        ([[25, 35], [5, 35]], 0.2593),
    ],
)
def test_same_agreement_different_kappa_examples(table: list[list[int]], kappa: float) -> None:
    a, b = _from_table(table, [1, 0])
    result = agreement(a, b, scale=(0, 1), resamples=0)
    assert result.exact.value == pytest.approx(0.6)
    assert result.kappa.value == pytest.approx(kappa, abs=5e-5)
    assert result.kappa.ci is None and result.kappa.resamples == 0


def test_weighted_kappa_on_two_categories_is_cohens_kappa() -> None:
    # Cohen (1968), "Weighted kappa": with two categories every weighting gives κ itself, so
    # the yes/no example's weighted κ is 0.4 as well.
    a, b = _from_table([[20, 5], [10, 15]], [1, 0])
    assert agreement(a, b, scale=(0, 1), resamples=0).weighted_kappa.value == pytest.approx(0.4)


def test_weighted_kappa_follows_cohens_1968_definition_on_a_4x4_table() -> None:
    # Cohen (1968): κ_w = 1 - Σ w_ij p_ij / Σ w_ij e_ij with quadratic disagreement weights
    # w_ij = (i - j)²; computed here from the definition as an independent oracle.
    table = [[6, 12, 5, 2], [19, 30, 10, 7], [0, 0, 0, 0], [16, 16, 9, 12]]
    n = sum(map(sum, table))
    rows = [sum(r) / n for r in table]
    cols = [sum(r[j] for r in table) / n for j in range(4)]
    observed = sum((i - j) ** 2 * table[i][j] / n for i in range(4) for j in range(4))
    expected = sum((i - j) ** 2 * rows[i] * cols[j] for i in range(4) for j in range(4))
    a, b = _from_table(table, [0, 1, 2, 3])
    result = agreement(a, b, resamples=0)
    assert result.weighted_kappa.value == pytest.approx(1 - observed / expected, abs=1e-6)
    # the same table as `propensity replay rescore --agreement` on the ToolEmu sample
    assert result.kappa.value == pytest.approx(0.064, abs=5e-4)


def test_risky_kappa_uses_toolemus_cut() -> None:
    assert [SAFETY_RISKY(s) for s in (0, 1, 2, 3)] == [True, True, False, False]
    table = [[6, 12, 5, 2], [19, 30, 10, 7], [0, 0, 0, 0], [16, 16, 9, 12]]
    a, b = _from_table(table, [0, 1, 2, 3])
    result = agreement(a, b, risky=SAFETY_RISKY, resamples=0)
    assert result.risky_kappa is not None
    assert result.risky_kappa.value == pytest.approx(0.137, abs=5e-4)  # as rescore reports
    # index 0 = not risky, 1 = risky
    assert result.risky_confusion == [[21, 32], [24, 67]]
    assert agreement(a, b, resamples=0).risky_kappa is None


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 observers,
# 12 units, values 1-5, missing data. Published: nominal α = 0.743, ordinal α = 0.815,
# interval α = 0.849.
_N = None
_OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _N, _N, _N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _N, 3],
    [_N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _N],
]
KRIPPENDORFF_C = {f"unit-{u + 1}": [obs[u] for obs in _OBSERVERS] for u in range(12)}


@pytest.mark.parametrize(
    ("level", "alpha"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorffs_worked_example(level: str, alpha: float) -> None:
    result = panel_alpha(KRIPPENDORFF_C, level=level, resamples=100)  # type: ignore[arg-type]
    assert result.value == pytest.approx(alpha, abs=5e-4)
    assert result.n == 11  # unit 12 has one value only: not pairable
    assert result.ci is not None and result.ci[0] <= result.value <= result.ci[1]


def test_degenerate_cases_are_none_with_a_reason_never_nan() -> None:
    empty = agreement({}, {}, resamples=10)
    assert empty.n == 0 and empty.kappa.value is None and empty.kappa.reason == "no paired items"
    assert empty.exact.value is None and empty.confusion == [[0] * 4 for _ in range(4)]
    same = agreement({"x": 2, "y": 2}, {"x": 2, "y": 2, "z": 1}, risky=SAFETY_RISKY)
    assert same.n == 2 and same.only_b == 1 and same.only_a == 0
    assert same.exact.value == 1.0
    for figure in (same.kappa, same.weighted_kappa, same.risky_kappa):
        assert figure is not None and figure.value is None
        assert figure.reason is not None and "same label" in figure.reason
    assert panel_alpha({}).value is None
    assert panel_alpha({"a": [1, None], "b": [None, 2]}).reason == "no item has two or more labels"
    assert "no variation" in (panel_alpha({"a": [2, 2], "b": [2, 2]}).reason or "")
    with pytest.raises(ValueError, match="not on the scale"):
        agreement({"x": 4}, {"x": 3})
    with pytest.raises(ValueError, match="one entry per judge"):
        panel_alpha({"a": [1, 2], "b": [1]})


def test_undefined_resamples_are_counted_not_hidden() -> None:
    # Nine agreeing "2"s and one disagreement: many resamples draw only the "2"s.
    a = {f"i{k}": 2 for k in range(9)} | {"odd": 0}
    b = {f"i{k}": 2 for k in range(9)} | {"odd": 1}
    result = agreement(a, b, resamples=300, seed=3)
    assert result.kappa.value is not None
    assert result.kappa.dropped > 0
    assert result.kappa.dropped < 300


def test_bootstrap_is_deterministic_by_seed() -> None:
    a, b = _from_table(
        [[6, 12, 5, 2], [19, 30, 10, 7], [0, 0, 0, 0], [16, 16, 9, 12]], [0, 1, 2, 3]
    )
    one = agreement(a, b, risky=SAFETY_RISKY, resamples=150, seed=7)
    two = agreement(a, b, risky=SAFETY_RISKY, resamples=150, seed=7)
    other = agreement(a, b, risky=SAFETY_RISKY, resamples=150, seed=8)
    assert one == two
    assert one.kappa.ci != other.kappa.ci
    assert one.kappa.value == other.kappa.value
    assert panel_alpha(KRIPPENDORFF_C, resamples=50, seed=1) == panel_alpha(
        KRIPPENDORFF_C, resamples=50, seed=1
    )


def test_panel_verdict() -> None:
    assert panel_verdict([3, 1, 2]) == 2
    assert panel_verdict([0, 3]) == 0  # even count: the lower median
    assert panel_verdict([None, 1, 3, None, 2, 2]) == 2
    assert panel_verdict([None, None]) is None
    assert panel_verdict([]) is None
    assert panel_verdict([1, 1, 3], ordinal=False) == 1
    assert panel_verdict([1, 3], ordinal=False) is None  # a tie is no verdict
    assert panel_verdict([1, 3, 3, None], ordinal=False) == 3


def test_disagreement_ranks_the_most_disputed_first() -> None:
    ranked = disagreement(KRIPPENDORFF_C)
    assert ranked[0] == ("unit-6", 3.0)  # 1, 2, 3, 4
    assert dict(ranked)["unit-1"] == 0.0
    assert "unit-12" not in dict(ranked)  # one label: nothing to disagree with
    # same range, the larger spread first
    assert disagreement({"p": [0, 3, 3, 3], "q": [0, 0, 3, 3]})[0][0] == "q"


def test_an_undefined_binary_kappa_names_the_side_not_a_scale_label() -> None:
    """Every item safe on both sides: the binary κ is n/a, and the reason must not read like
    label 0 of the 0-3 scale (likely severe risk)."""
    from evaluators.agreement import SAFETY_RISKY

    labels = {"e1": 3, "e2": 2, "e3": 3}
    result = agreement(labels, labels, risky=SAFETY_RISKY, resamples=0)
    assert result.risky_kappa is not None and result.risky_kappa.value is None
    assert "(predicate false)" in (result.risky_kappa.reason or "")
    named = agreement(
        labels, labels, risky=SAFETY_RISKY, resamples=0, binary_names=("safe", "risky")
    )
    assert named.risky_kappa is not None and "(safe)" in (named.risky_kappa.reason or "")
    assert named.risky_axes == ["safe", "risky"]
