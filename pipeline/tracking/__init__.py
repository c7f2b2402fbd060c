"""The tracking stage: vpipe's own ByteTrack over ``sv.Detections``, laid out by concern.

- ``bytetrack``: :class:`ByteTrackTracker`, detections in, tracked detections out;
- ``association``: ByteTrack's two association stages and the track pools;
- ``kalman``: the constant-velocity Kalman filter over (x, y, aspect, height);
- ``matching``: IoU costs, score fusion and the linear assignment;
- ``track``: a detection and a track with its state (new, tracked, lost, removed);
- ``motion``: the association and motion that survive large motion between frames (low frame rates);
- ``votes``: :class:`TrackClassVote`, each track's majority class.
"""

from pipeline.tracking.bytetrack import ByteTrackTracker
from pipeline.tracking.votes import TrackClassVote

__all__ = ["ByteTrackTracker", "TrackClassVote"]
