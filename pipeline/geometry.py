"""Geometry types shared by the config and the analytics stages."""

Point = tuple[float, float]
"""An (x, y) position: pixels in the image, or metres on the ground plane."""
