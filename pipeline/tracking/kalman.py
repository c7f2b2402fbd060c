"""ByteTrack's constant-velocity Kalman filter over boxes as (centre x, centre y, aspect, height).

The state is the box and its rate of change per frame: ``(x, y, a, h, vx, vy, va, vh)``. Process and
measurement noise scale with the box height (a near object moves and jitters more pixels than a far
one); the aspect ratio gets small, fixed noise. The maths is ByteTrack's (and DeepSORT's), written
with the same numpy operations in the same order so that tracks come out bit for bit the same.

Example:
    >>> kalman = KalmanFilter()
    >>> mean, covariance = kalman.initiate(np.array([100.0, 50.0, 0.5, 40.0]))
    >>> means, covariances = kalman.multi_predict(np.array([mean]), np.array([covariance]))
    >>> means[0].tolist()  # no velocity yet: the box stays where it was
    [100.0, 50.0, 0.5, 40.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import numpy as np

STD_WEIGHT_POSITION = 1.0 / 20
"""Position noise (one standard deviation) as a fraction of the box height."""
STD_WEIGHT_VELOCITY = 1.0 / 160
"""Velocity noise per frame as a fraction of the box height."""


class KalmanFilter:
    """Predicts and corrects box states under a constant-velocity model, one frame per step.

    The motion matrix adds each velocity to its coordinate once per frame; a measurement observes
    the box ``(x, y, a, h)`` directly.
    """

    def __init__(self) -> None:
        self._motion_mat = np.eye(8)
        self._motion_mat[range(4), range(4, 8)] = 1.0

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A new state at ``measurement`` ``(x, y, a, h)``, at rest, with uncertainty scaled by its height.

        Args:
            measurement: The box as centre x, centre y, aspect ratio (width / height), height.

        Returns:
            The 8-vector mean (float64, zero velocity) and its 8x8 diagonal covariance.
        """
        measurement = np.asarray(measurement, dtype=np.float64)
        mean = np.r_[measurement, np.zeros_like(measurement)]
        height = measurement[3]
        std = [
            2 * STD_WEIGHT_POSITION * height,
            2 * STD_WEIGHT_POSITION * height,
            1e-2,
            2 * STD_WEIGHT_POSITION * height,
            10 * STD_WEIGHT_VELOCITY * height,
            10 * STD_WEIGHT_VELOCITY * height,
            1e-5,
            10 * STD_WEIGHT_VELOCITY * height,
        ]
        return mean, np.diag(np.square(std))

    def multi_predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance N states one frame: each coordinate moves by its velocity, uncertainty grows.

        Args:
            mean: N x 8 state means.
            covariance: N x 8 x 8 state covariances.

        Returns:
            The predicted means (N x 8) and covariances (N x 8 x 8).
        """
        height, ones = mean[:, 3], np.ones_like(mean[:, 3])
        std_pos = [
            STD_WEIGHT_POSITION * height,
            STD_WEIGHT_POSITION * height,
            1e-2 * ones,
            STD_WEIGHT_POSITION * height,
        ]
        std_vel = [
            STD_WEIGHT_VELOCITY * height,
            STD_WEIGHT_VELOCITY * height,
            1e-5 * ones,
            STD_WEIGHT_VELOCITY * height,
        ]
        variance = np.square(np.r_[std_pos, std_vel]).T
        motion_cov = np.zeros((variance.shape[0], 8, 8))
        motion_cov[:, range(8), range(8)] = variance
        mean = np.dot(mean, self._motion_mat.T)
        left = np.dot(self._motion_mat, covariance).transpose((1, 0, 2))
        return mean, np.dot(left, self._motion_mat.T) + motion_cov

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`multi_predict` for one state (an 8-vector and its 8x8 covariance)."""
        means, covariances = self.multi_predict(mean[None], covariance[None])
        return means[0], covariances[0]

    def update(
        self, mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correct a state with an observed box.

        Args:
            mean: The predicted 8-vector.
            covariance: Its 8x8 covariance.
            measurement: The observed box ``(x, y, a, h)``.

        Returns:
            The corrected mean and covariance: the box moves toward the measurement, and the velocity
            toward the change that explains it, each by the Kalman gain.
        """
        std = STD_WEIGHT_POSITION * mean[3]
        measurement_noise = np.diag(np.square([std, std, 1e-1, std]))
        projected_mean = mean[:4].copy()
        projected_cov = covariance[:4, :4] + measurement_noise
        kalman_gain = np.linalg.solve(projected_cov, covariance[:, :4].T).T
        innovation = measurement - projected_mean
        new_mean = mean + np.dot(innovation, kalman_gain.T)
        new_covariance = covariance - np.linalg.multi_dot((kalman_gain, projected_cov, kalman_gain.T))
        return new_mean, new_covariance
