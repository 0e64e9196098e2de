"""Statistics against values computed by hand (see the comments for the arithmetic)."""

import math

import numpy as np
import pytest

from personaguard.audit import stats


def test_wilson_8_of_10():
    # centre = (0.8 + 1.96²/20) / (1 + 1.96²/10) = 0.71673
    # half = 1.96·sqrt(0.8·0.2/10 + 1.96²/400) / 1.38415 = 0.22658
    r = stats.wilson(8, 10)
    assert r.rate == 0.8
    assert r.lo == pytest.approx(0.49016, abs=1e-4)
    assert r.hi == pytest.approx(0.94331, abs=1e-4)


def test_wilson_edges():
    zero = stats.wilson(0, 10)
    assert zero.lo == 0.0 and zero.hi == pytest.approx(0.27753, abs=1e-4)  # z²/(n+z²)
    full = stats.wilson(10, 10)
    assert full.hi == pytest.approx(1.0) and full.lo == pytest.approx(1 - 0.27753, abs=1e-4)
    assert math.isnan(stats.wilson(0, 0).rate)


def test_mcnemar_exact_by_hand():
    # discordant pairs: (1,0) twice, (0,1) six times; one concordant (1,1)
    a = np.array([1, 0, 0, 0, 0, 0, 0, 1, 1])
    b = np.array([0, 1, 1, 1, 1, 1, 1, 1, 0])
    p, a_only, b_only = stats.mcnemar_exact(a, b)
    assert (a_only, b_only) == (2, 6)
    # p = 2·P(X <= 2 | Bin(8, 1/2)) = 2·(C(8,0)+C(8,1)+C(8,2))/2^8 = 2·37/256
    assert p == pytest.approx(74 / 256)


def test_mcnemar_no_discordance():
    assert stats.mcnemar_exact(np.ones(5), np.ones(5)) == (1.0, 0, 0)


def test_paired_delta_mean_and_ci_cover_truth():
    rng = np.random.default_rng(1)
    a = (rng.random(400) < 0.3).astype(float)
    b = a.copy()
    flip = rng.choice(400, 40, replace=False)  # 40 items go from 0 to 1 or stay 1
    b[flip] = 1
    d = stats.paired_delta(a, b)
    assert d.delta == pytest.approx((b - a).mean())
    assert d.lo <= d.delta <= d.hi
    assert d.a_only == 0 and d.b_only == int((b - a).sum())
    assert d.p_mcnemar < 1e-6


def test_paired_delta_is_reproducible():
    a = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    b = np.array([1, 1, 0, 0, 1, 1, 1, 1])
    assert stats.paired_delta(a, b) == stats.paired_delta(a, b)


def test_amplification_ratio():
    n = 100
    base_n = np.zeros(n)
    tuned_n = np.zeros(n)
    tuned_n[:10] = 1  # +10 pp under neutral
    base_c = np.zeros(n)
    tuned_c = np.zeros(n)
    tuned_c[:20] = 1  # +20 pp under context
    amp = stats.amplification(base_n, tuned_n, base_c, tuned_c)
    assert amp.value == pytest.approx(2.0)
    assert amp.lo < 2.0 < amp.hi


def test_amplification_undefined_without_neutral_delta():
    z = np.zeros(20)
    amp = stats.amplification(z, z, z, np.ones(20))
    assert math.isnan(amp.value) and math.isnan(amp.lo)
