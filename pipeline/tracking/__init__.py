"""The tracking stage: ByteTrack over ``sv.Detections``, with buffers in seconds (``bytetrack``) and
an association that survives large motion between frames (``motion``)."""

from pipeline.tracking.bytetrack import ByteTrackTracker, TrackClassVote

__all__ = ["ByteTrackTracker", "TrackClassVote"]
