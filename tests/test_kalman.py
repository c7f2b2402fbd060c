"""The tracker's Kalman filter, on cases worked out by hand.

A box of height 40: the position noise is 40 / 20 = 2 px (one standard deviation), the velocity
noise 40 / 160 = 0.25 px per frame; a new state is twice (position) and ten times (velocity) as
uncertain: variances 16 and 6.25.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.tracking.kalman import KalmanFilter

BOX = np.array([100.0, 50.0, 0.5, 40.0])  # centre x, centre y, aspect (width / height), height


def test_a_new_state_is_at_its_box_at_rest_with_uncertainty_scaled_by_its_height():
    mean, covariance = KalmanFilter().initiate(BOX)
    assert mean.tolist() == [100.0, 50.0, 0.5, 40.0, 0.0, 0.0, 0.0, 0.0]
    expected = np.diag([16.0, 16.0, 1e-4, 16.0, 6.25, 6.25, 1e-10, 6.25])
    np.testing.assert_allclose(covariance, expected, rtol=1e-12, atol=0)


def test_predict_moves_each_coordinate_by_its_velocity_and_grows_the_uncertainty():
    kalman = KalmanFilter()
    _, covariance = kalman.initiate(BOX)
    mean = np.array([100.0, 50.0, 0.5, 40.0, 3.0, -2.0, 0.0, 1.0])
    predicted, predicted_cov = kalman.predict(mean, covariance)
    assert predicted.tolist() == [103.0, 48.0, 0.5, 41.0, 3.0, -2.0, 0.0, 1.0]
    # x: its variance 16, plus its velocity's 6.25 carried over one frame, plus the process noise
    # 2 ** 2 (noise scales with the height before the step, 40); x and vx now covary by 6.25.
    assert predicted_cov[0, 0] == pytest.approx(16 + 6.25 + 4, rel=1e-12)
    assert predicted_cov[0, 4] == pytest.approx(6.25, rel=1e-12)
    assert predicted_cov[4, 4] == pytest.approx(6.25 + 0.25**2, rel=1e-12)
    assert predicted_cov[0, 1] == 0  # x and y stay independent


def test_multi_predict_is_predict_row_by_row():
    kalman = KalmanFilter()
    means = np.array([[100.0, 50.0, 0.5, 40.0, 3.0, -2.0, 0.0, 1.0], [10.0, 20.0, 2.0, 8.0, 0.0, 5.0, 0.0, 0.0]])
    covariances = np.array([kalman.initiate(mean[:4])[1] for mean in means])
    predicted, predicted_cov = kalman.multi_predict(means, covariances)
    for row in range(2):
        one, one_cov = kalman.predict(means[row], covariances[row])
        np.testing.assert_allclose(predicted[row], one, rtol=1e-15)
        np.testing.assert_allclose(predicted_cov[row], one_cov, rtol=1e-15)


def test_update_moves_position_and_velocity_toward_the_measurement_by_the_kalman_gain():
    kalman = KalmanFilter()
    mean, covariance = kalman.predict(*kalman.initiate(BOX))  # at rest: x variance 26.25, x-vx 6.25
    measured = BOX + np.array([12.1, 0.0, 0.0, 0.0])  # seen 12.1 px right of the prediction
    corrected, corrected_cov = kalman.update(mean, covariance, measured)
    # The innovation's variance is 26.25 + 2 ** 2 = 30.25: x gains 26.25 / 30.25 of the 12.1 px,
    # vx 6.25 / 30.25 of it; nothing else moves.
    expected = [100 + 12.1 * 26.25 / 30.25, 50, 0.5, 40, 12.1 * 6.25 / 30.25, 0, 0, 0]
    np.testing.assert_allclose(corrected, expected, rtol=1e-12, atol=1e-12)
    assert corrected.tolist()[:2] == pytest.approx([110.5, 50.0], rel=1e-12)
    # The x variance shrinks to 26.25 * 4 / 30.25 (the two variances combined in parallel).
    assert corrected_cov[0, 0] == pytest.approx(26.25 * 4 / 30.25, rel=1e-12)


def test_a_box_moving_at_constant_velocity_is_predicted_exactly_once_the_filter_has_converged():
    kalman = KalmanFilter()
    mean, covariance = kalman.initiate(BOX)
    velocity = np.array([5.0, -3.0, 0.0, 0.5])  # px per frame; the box grows half a pixel a frame
    for frame in range(1, 201):
        mean, covariance = kalman.predict(mean, covariance)
        mean, covariance = kalman.update(mean, covariance, BOX + frame * velocity)
    predicted, _ = kalman.predict(mean, covariance)
    np.testing.assert_allclose(predicted[:4], BOX + 201 * velocity, atol=1e-6)
    np.testing.assert_allclose(predicted[4:], velocity, atol=1e-6)
