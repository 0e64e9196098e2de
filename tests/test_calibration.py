"""The statistics are calibrated: nulls reject about 5% of the time, intervals cover about 95%.

A smaller simulation than docs/AUDIT.md's (300 rather than 500+ per row), so the bands are wider:
with 300 simulations the standard error of a 5% rate is 1.3 points and of a 95% coverage 1.3 points.
"""

import numpy as np
import pytest

from personaguard.audit import calibration
from personaguard.audit.calibration import Scenario

SIMS = 300
FPR_BAND = (0.01, 0.10)
COVERAGE_BAND = (0.90, 0.99)


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario("singletons, null", 150, 1, 0.4, 1.0, 0.0, "resample"),
        Scenario("40x6, null with opposed item effects", 40, 6, 0.5, 1.5, 0.15, "opposed"),
        Scenario("100x3, null with opposed item effects", 100, 3, 0.5, 1.0, 0.15, "opposed"),
    ],
    ids=lambda s: s.name,
)
def test_false_positive_rate_under_nulls(scenario):
    check = calibration.check_scenario(scenario, SIMS, seed=1)
    assert FPR_BAND[0] <= check.rejected <= FPR_BAND[1]
    assert COVERAGE_BAND[0] <= check.covered <= COVERAGE_BAND[1]


def test_treating_repeated_items_as_independent_is_what_inflated_false_positives():
    """The bug the clustering fixes: the same null, tested sample by sample."""
    check = calibration.check_scenario(Scenario("40x6 opposed", 40, 6, 0.5, 1.5, 0.15, "opposed"), SIMS, 2)
    assert check.naive_rejected > 0.12 > FPR_BAND[1] >= check.rejected


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario("singletons, +6% of samples", 200, 1, 0.3, 1.0, 0.06, "samples"),
        Scenario("40x6, 20% of items broken", 40, 6, 0.5, 1.0, 0.20, "items"),
        Scenario("100x3, 10% of items broken", 100, 3, 0.4, 1.0, 0.10, "items"),
    ],
    ids=lambda s: s.name,
)
def test_intervals_cover_an_injected_effect(scenario):
    check = calibration.check_scenario(scenario, SIMS, seed=3)
    assert check.truth > 0.02  # a real effect was injected
    assert COVERAGE_BAND[0] <= check.covered <= COVERAGE_BAND[1]
    assert check.rejected > 0.3  # and the test has some power against it


def test_relabelled_nulls_of_real_looking_runs():
    rng = np.random.default_rng(0)
    # 40 requests x 6 framings; the tuned variant breaks a quarter of the requests under every framing
    base = {(f"r{i}", f): float(rng.random() < 0.4) for i in range(40) for f in range(6)}
    tuned = {k: 1.0 if int(k[0][1:]) % 4 == 0 else v for k, v in base.items()}
    check = calibration.relabelled_nulls(base, tuned, cluster=lambda k: k[0], sims=SIMS, seed=4)
    assert check.truth == 0.0
    assert check.rejected <= FPR_BAND[1] and check.covered >= COVERAGE_BAND[0]
    assert check.naive_rejected > check.rejected
