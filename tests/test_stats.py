"""Statistics against values computed by hand or by brute force (see the comments for the arithmetic)."""

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binom

from personaguard.audit import stats


def test_wilson_8_of_10():
    # centre = (0.8 + 1.96²/20) / (1 + 1.96²/10) = 0.71673
    # half = 1.96·sqrt(0.8·0.2/10 + 1.96²/400) / 1.38415 = 0.22658
    lo, hi = stats.wilson(8, 10)
    assert lo == pytest.approx(0.49016, abs=1e-4)
    assert hi == pytest.approx(0.94331, abs=1e-4)


def test_rate_edges():
    zero = stats.rate([0] * 10)
    assert zero.lo == 0.0 and zero.hi == pytest.approx(0.27753, abs=1e-4)  # z²/(n+z²)
    full = stats.rate([1] * 10)
    assert full.hi == pytest.approx(1.0) and full.lo == pytest.approx(1 - 0.27753, abs=1e-4)
    assert math.isnan(stats.rate([]).rate)


def test_unclustered_rate_is_plain_wilson():
    r = stats.rate([1] * 8 + [0] * 2)
    assert (r.k, r.n, r.clusters, r.deff) == (8, 10, 10, 1.0)
    assert (r.lo, r.hi) == stats.wilson(8, 10)


def test_clustered_rate_uses_the_design_effect():
    # 4 clusters of 2, perfectly correlated: p = 1/2, iid var = 1/4/8 = 1/32;
    # robust var = 4/3 · Σ(S_j - 2·0.5)² / 8² = 4/3 · 4 / 64 = 1/12  ->  deff = 32/12 = 2.667,
    # capped at the largest cluster (2): the interval is Wilson on 4 of 8 with n_eff = 8 / 2
    r = stats.rate([1, 1, 0, 0, 1, 1, 0, 0], ["a", "a", "b", "b", "c", "c", "d", "d"])
    assert r.deff == 2.0 and r.clusters == 4
    assert (r.lo, r.hi) == pytest.approx(stats.wilson(2, 4))
    assert r.hi - r.lo > np.subtract(*stats.wilson(4, 8)[::-1])  # wider than treating 8 as independent


def test_tango_interval_with_no_discordant_pairs():
    # With b = c = 0 the score statistic is sqrt(n·d/(1-d)); solving = z gives d = z²/(n + z²).
    lo, hi = stats.tango_interval(0, 0, 100)
    z2 = stats.Z95**2
    assert hi == pytest.approx(z2 / (100 + z2), abs=1e-9) and lo == pytest.approx(-hi, abs=1e-9)


def test_tango_bounds_are_where_the_score_statistic_crosses_z():
    lo, hi = stats.tango_interval(12, 4, 60)
    assert stats._tango_z(12, 4, 60, lo) == pytest.approx(stats.Z95, abs=1e-6)
    assert stats._tango_z(12, 4, 60, hi) == pytest.approx(-stats.Z95, abs=1e-6)
    assert lo < (12 - 4) / 60 < hi


def test_no_discordance_gives_an_honest_interval_not_zero_width():
    # The percentile bootstrap printed [+0.0, +0.0] here.
    d = stats.paired_delta(np.zeros(50), np.zeros(50))
    assert d.delta == 0 and d.lo < -0.05 and d.hi > 0.05 and d.p == 1.0


def test_sign_flip_on_singletons_is_the_mid_p_mcnemar():
    # 6 pairs up, 2 down: mid-p = 2·(P(X<=2) - P(X=2)/2), X ~ Bin(8, 1/2)
    expected = 2 * (binom.cdf(2, 8, 0.5) - 0.5 * binom.pmf(2, 8, 0.5))
    assert stats.sign_flip_p([1] * 6 + [-1] * 2) == pytest.approx(expected)


def test_sign_flip_matches_brute_force_enumeration():
    sums = [3, -1, 2, 0, -2, 1]
    t = abs(sum(sums))
    flips = [abs(sum(s * d for s, d in zip(signs, sums))) for signs in itertools.product([1, -1], repeat=6)]
    expected = (sum(f > t for f in flips) + 0.5 * sum(f == t for f in flips)) / len(flips)
    assert stats.sign_flip_p(sums) == pytest.approx(expected)


def test_paired_delta_counts_and_singleton_p():
    a = np.array([1, 0, 0, 0, 0, 0, 0, 1, 1])
    b = np.array([0, 1, 1, 1, 1, 1, 1, 1, 0])
    d = stats.paired_delta(a, b)
    assert (d.a_only, d.b_only, d.clusters, d.deff) == (2, 6, 9, 1.0)
    assert d.delta == pytest.approx(4 / 9)
    assert d.p == pytest.approx(stats.sign_flip_p([1] * 6 + [-1] * 2))


def test_clustered_delta_counts_items_not_samples():
    # 30 items x 6 framings; 5 items flip in every framing: 30 discordant samples but 5 items.
    a = np.zeros(180)
    b = np.zeros(180)
    b[:30] = 1
    clusters = np.repeat(np.arange(30), 6)
    naive = stats.paired_delta(a, b)
    clustered = stats.paired_delta(a, b, clusters)
    assert naive.p < 1e-8  # 30 of 30 discordant samples one way
    # the same 5 items as singletons: what clustering must reduce the evidence to
    assert clustered.p == pytest.approx(stats.sign_flip_p([1] * 5))
    assert clustered.hi - clustered.lo > 2 * (naive.hi - naive.lo)


def test_design_effect_floor_with_too_few_informative_clusters():
    a = np.zeros(60)
    b = np.zeros(60)
    b[:2] = 1  # one item, two of its samples
    d = stats.paired_delta(a, b, np.repeat(np.arange(20), 3))
    assert d.deff == 3.0  # worst case: every sample of an item moves together


@pytest.mark.parametrize("informative", [2, 3, 4])
def test_few_informative_clusters_never_give_an_interval_the_exact_test_contradicts(informative):
    """Found by relabelled nulls on the quick demo: 6 requests x 6 framings, the discordant samples
    in 3 requests (+2 each). The sandwich saw no clustering (deff 1.03) and its interval excluded 0
    in a quarter of the nulls, while the exact sign-flip test (p = 1/8) could never reject."""
    clusters = np.repeat(np.arange(6), 6)
    a = np.zeros(36)
    b = np.zeros(36)
    for item in range(informative):
        b[item * 6 : item * 6 + 2] = 1  # two framings of the item flip, all the same way
    d = stats.paired_delta(a, b, clusters)
    assert d.p > 0.05  # the exact test cannot reject with so few clusters
    assert d.lo <= 0 <= d.hi


def test_holm_by_hand():
    # sorted p: 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> monotone 0.06)
    assert stats.holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])


def test_amplification_ratio():
    n = 100
    z = np.zeros(n)
    tuned_n = z.copy()
    tuned_n[:10] = 1  # +10 pp under neutral
    tuned_c = z.copy()
    tuned_c[:20] = 1  # +20 pp under context
    amp = stats.amplification(z, tuned_n, z, tuned_c)
    assert amp.value == pytest.approx(2.0)
    assert amp.lo < 2.0 < amp.hi


def test_amplification_undefined_without_neutral_delta():
    z = np.zeros(20)
    amp = stats.amplification(z, z, z, np.ones(20))
    assert math.isnan(amp.value) and math.isnan(amp.lo)
