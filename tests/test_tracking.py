"""ByteTrack wrapper: IDs persist across frames, masks follow their boxes, the buffer is in seconds."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from pipeline.analytics.lines import LineCounter
from pipeline.config import TrackerConfig
from pipeline.run.frame_pipeline import DistinctTracks
from pipeline.tracking import ByteTrackTracker, TrackClassVote


def boxes(*xs: float, with_masks: bool = False) -> sv.Detections:
    xyxy = np.array([[x, 100.0, x + 40, 140.0] for x in xs]).reshape(-1, 4)
    masks = None
    if with_masks:
        masks = np.zeros((len(xs), 200, 400), bool)
        for index, x in enumerate(xs):
            masks[index, 100:140, int(x) : int(x) + 40] = True
    return sv.Detections(
        xyxy=xyxy,
        mask=masks,
        confidence=np.full(len(xs), 0.9),
        class_id=np.full(len(xs), 2),
        data={"class_name": np.array(["car"] * len(xs))},
    )


def test_ids_persist_for_objects_moving_steadily():
    tracker = ByteTrackTracker(TrackerConfig(), fps=30)
    ids_by_frame = []
    for step in range(10):
        tracked = tracker.update(boxes(10 + 3 * step, 200 + 3 * step))
        ids_by_frame.append(dict(zip(tracked.xyxy[:, 0].round().astype(int), tracked.tracker_id, strict=True)))
    first_ids = set(ids_by_frame[0].values())
    assert len(first_ids) == 2
    assert all(set(ids.values()) == first_ids for ids in ids_by_frame)
    assert ids_by_frame[-1][10 + 27] == ids_by_frame[0][10]  # the left object kept its ID


def test_masks_and_data_follow_their_detections():
    tracker = ByteTrackTracker(TrackerConfig(), fps=30)
    tracked = tracker.update(boxes(10, 200, with_masks=True))
    tracked = tracker.update(boxes(200, 12, with_masks=True))  # same objects, listed in the other order
    for box, mask in zip(tracked.xyxy, tracked.mask, strict=True):
        _, xs = np.nonzero(mask)
        assert xs.min() == int(box[0])
    assert list(tracked.data["class_name"]) == ["car", "car"]


def test_low_confidence_boxes_do_not_start_tracks():
    tracker = ByteTrackTracker(TrackerConfig(new_track_thresh=0.5, track_high_thresh=0.5), fps=30)
    weak = boxes(10)
    weak.confidence = np.array([0.3])
    assert len(tracker.update(weak)) == 0
    assert len(tracker.update(weak)) == 0


def lost_then_found(gap_frames: int, track_buffer_s: float, fps: float) -> bool:
    """Whether an object keeps its ID after being missed for ``gap_frames`` frames."""
    tracker = ByteTrackTracker(TrackerConfig(track_buffer_s=track_buffer_s), fps=fps)
    first = tracker.update(boxes(100)).tracker_id[0]
    tracker.update(boxes(100))
    for _ in range(gap_frames):
        tracker.update(boxes())
    tracker.update(boxes(100))  # a new track is confirmed only on its second frame
    return tracker.update(boxes(100)).tracker_id[0] == first


def test_buffer_is_converted_from_seconds_with_the_real_fps():
    assert ByteTrackTracker(TrackerConfig(track_buffer_s=0.5), fps=60).buffer_frames == 30
    assert ByteTrackTracker(TrackerConfig(track_buffer_s=0.5), fps=12.5).buffer_frames == 6
    # 0.5 s at 12.5 fps is 6 frames: a 5-frame gap is bridged, a 10-frame gap is not.
    assert lost_then_found(gap_frames=5, track_buffer_s=0.5, fps=12.5)
    assert not lost_then_found(gap_frames=10, track_buffer_s=0.5, fps=12.5)
    # The same 10-frame gap at 60 fps is only 1/6 s, inside the buffer.
    assert lost_then_found(gap_frames=10, track_buffer_s=0.5, fps=60)


def test_no_detections_give_empty_tracked_detections_with_the_same_columns():
    tracker = ByteTrackTracker(TrackerConfig(), fps=30)
    tracked = tracker.update(boxes())
    assert len(tracked) == 0 and tracked.tracker_id is not None
    assert "class_name" in tracked.data


def test_class_flicker_keeps_the_majority_class():
    tracker = ByteTrackTracker(TrackerConfig(), fps=30, class_names={2: "car", 7: "truck"})
    seen = []
    for step, class_id in enumerate([2, 2, 2, 7, 7, 2, 7]):
        detections = boxes(10 + 2 * step)
        detections.class_id = np.array([class_id])
        detections.data["class_name"] = np.array(["car" if class_id == 2 else "truck"])
        tracked = tracker.update(detections)
        seen.append((int(tracked.class_id[0]), str(tracked.data["class_name"][0])))
    assert seen == [(2, "car")] * 7


def test_majority_changes_when_the_evidence_does():
    vote = TrackClassVote(forget_after_frames=10)
    assert [vote.update([1], [c])[0] for c in [7, 2, 2, 2]] == [7, 7, 2, 2]  # ties keep the first class


def test_votes_of_vanished_tracks_are_forgotten():
    vote = TrackClassVote(forget_after_frames=3)
    vote.update([1, 2], [2, 2])
    for _ in range(4):
        vote.update([2], [2])
    assert vote.tracks_held == 1


def test_predict_carries_tracks_between_detections_with_their_motion():
    tracker = ByteTrackTracker(TrackerConfig(), fps=30, class_names={2: "car"}, detect_every=2)
    for step in range(0, 12, 2):  # an object moving 4 px per frame, detected every other frame
        tracked = tracker.update(boxes(10 + 4 * step, with_masks=True))
        predicted = tracker.predict()
    assert list(predicted.tracker_id) == list(tracked.tracker_id)
    # Detected at x = 10 + 4 * 10 = 50 on the last update; one frame later the motion model says ~54.
    assert predicted.xyxy[0, 0] == pytest.approx(54, abs=1.5)
    assert list(predicted.data["class_name"]) == ["car"]
    _, xs = np.nonzero(predicted.mask[0])
    assert xs.min() == pytest.approx(54, abs=1.5)  # the mask moved with the box


def test_predict_without_tracks_is_empty():
    assert len(ByteTrackTracker(TrackerConfig(), fps=30).predict()) == 0


def test_lost_buffer_is_counted_in_frames_when_striding():
    # 1 s at 30 fps, detections every 4th frame: kept 8 updates without a match (32 frames), as
    # ByteTrack given every 4th frame would keep it ceil(30 / 4) of its frames.
    tracker = ByteTrackTracker(TrackerConfig(track_buffer_s=1.0), fps=30, detect_every=4)
    assert tracker.lost_buffer_steps == 32


def line_crossings(positions_px: list[float | None], length_px: float, fps: float) -> list[tuple[str, int]]:
    """(direction, track) of each crossing of a vertical line at x=300 by a box of ``length_px``
    whose left edge is at each of ``positions_px`` in turn (None: not detected on that frame),
    through the tracker and the counter."""
    tracker = ByteTrackTracker(TrackerConfig(), fps=fps)
    counter = LineCounter("gate", start=(300, 400), end=(300, 0), min_crossing_distance=6)
    tracker.update(sv.Detections.empty())  # ByteTrack confirms tracks born on its first frame at once
    events = []
    for index, x in enumerate(positions_px):
        detections = sv.Detections.empty()
        if x is not None:
            detections = sv.Detections(
                xyxy=np.array([[x, 100.0, x + length_px, 130.0]]), confidence=np.array([0.9]), class_id=np.array([2])
            )
        events += counter.update(tracker.update(detections), index, index / fps)
    return [(event.direction, event.track_id) for event in events]


def test_a_track_moving_one_and_a_half_lengths_per_frame_counts_once():
    # 40 px long, 60 px a frame at 5 fps: no two consecutive boxes overlap.
    assert line_crossings([100 + 60 * i for i in range(8)], length_px=40, fps=5) == [("in", 1)]
    # Right to left: the other direction, once.
    assert line_crossings([520 - 60 * i for i in range(8)], length_px=40, fps=5) == [("out", 1)]


def test_a_crossing_between_a_tracks_first_two_sightings_counts():
    # Seen first before the line (anchor x=280), then beyond it (x=340): confirmed only after crossing.
    assert line_crossings([260, 320, 380, 440], length_px=40, fps=5) == [("in", 1)]


def test_neighbours_moving_fast_keep_their_own_tracks():
    tracker = ByteTrackTracker(TrackerConfig(), fps=5)
    ids = []
    for step in range(6):
        x = 100 + 60.0 * step
        detections = sv.Detections(
            xyxy=np.array([[x, 100.0, x + 40, 130.0], [x + 10, 140.0, x + 50, 170.0]]),
            confidence=np.array([0.9, 0.9]),
            class_id=np.array([2, 2]),
        )
        tracked = tracker.update(detections)
        ids.append(dict(zip(tracked.xyxy[:, 1].astype(int).tolist(), tracked.tracker_id.tolist(), strict=True)))
    assert ids[1] == ids[-1] and len(set(ids[-1].values())) == 2  # top lane keeps one ID, bottom another


def test_a_new_track_missed_once_is_kept_for_its_window():
    # 10 fps: seen, missed for one frame (0.1 s), seen again beyond the line, within the 0.3 s window.
    assert line_crossings([230, None, 290, 320, 350], length_px=40, fps=10) == [("in", 1)]
    # At 2.5 fps the same single miss is 0.4 s, longer than the window: the first sighting is dropped,
    # the track starts beyond the line, and the crossing is not counted.
    assert line_crossings([230, None, 290, 320, 350], length_px=40, fps=2.5) == []


def test_distinct_track_ids_are_counted_once_also_tracks_seen_before_counting_began():
    tracks = DistinctTracks()
    tracks.skip(np.array([1, 2, 4]))  # a slice's warm-up: 3 was issued but never confirmed
    for ids in ([4], [5], [2, 5, 6], [2], [], [1, 6, 7], [7, 8]):
        tracks.update(np.array(ids, dtype=int))
    assert tracks.total == 7  # 4, 5, 2, 6, 1, 7, 8


def test_distinct_track_ids_of_a_real_tracker_match_the_set_of_ids_it_output():
    tracker, tracks, seen = ByteTrackTracker(TrackerConfig(), fps=30), DistinctTracks(), set()
    for frame in range(60):  # objects appear one after another and the early ones leave
        xs = [x + 3.0 * frame for x in (0.0, 60.0, 120.0, 180.0) if frame >= x / 10 and x + 3.0 * frame < 300]
        ids = tracker.update(boxes(*xs)).tracker_id
        tracks.update(ids)
        seen.update(ids.tolist())
    assert len(seen) >= 3 and tracks.total == len(seen)


def scene(*boxes: tuple[float, float, float]) -> sv.Detections:
    """Detections of 40 x 40 boxes at (left, top) with the given scores."""
    return sv.Detections(
        xyxy=np.array([[x, y, x + 40, y + 40] for x, y, _ in boxes], dtype=float).reshape(-1, 4),
        confidence=np.array([score for _, _, score in boxes], dtype=float),
        class_id=np.full(len(boxes), 2),
    )


def test_a_low_score_detection_extends_a_track_but_never_starts_one():
    # High >= 0.25, low above 0.1. A confirmed track keeps its ID through frames where its object is
    # seen only weakly (ByteTrack's second stage); a weak object alone never gets a track, even with
    # a score (0.15) that new_track_thresh (here 0.1) would let start one.
    tracker = ByteTrackTracker(TrackerConfig(new_track_thresh=0.1), fps=30)
    tracker.update(scene())  # tracks born on the very first frame are confirmed at once
    tracker.update(scene((100, 100, 0.9), (300, 100, 0.15)))
    first = tracker.update(scene((100, 100, 0.9), (300, 100, 0.15)))
    assert len(first) == 1
    for _ in range(5):
        tracked = tracker.update(scene((100, 100, 0.15), (300, 100, 0.15)))
        assert tracked.tracker_id.tolist() == first.tracker_id.tolist()
        assert tracked.confidence.tolist() == [0.15]


def test_a_low_score_detection_extends_one_track_only():
    # Tracks B (top at 100) and C (top at 110, IoU 0.6 with B) are confirmed, then C is lost. When
    # B is seen only weakly, while another lost track (A) is re-found, B's weak box still overlaps
    # lost C by IoU 0.6 >= 0.5, but it is B's: C stays lost and the box is reported once, not twice.
    tracker = ByteTrackTracker(TrackerConfig(), fps=30)
    tracker.update(scene())
    for _ in range(2):
        ids = tracker.update(scene((400, 100, 0.9), (100, 100, 0.9), (100, 110, 0.9))).tracker_id.tolist()
    a, b, _ = ids
    tracker.update(scene((100, 100, 0.9)))  # A and C missed: lost
    tracked = tracker.update(scene((400, 100, 0.9), (100, 100, 0.15)))
    assert sorted(tracked.tracker_id.tolist()) == sorted([a, b])


def test_a_track_moving_at_constant_velocity_is_predicted_exactly_from_its_last_two_boxes():
    # Seen at x = 10 then 14 (4 px a frame, height steady): the observed-box motion puts the
    # track at its last box moving 4 px a frame, so the frames without detections are exact.
    tracker = ByteTrackTracker(TrackerConfig(), fps=30, detect_every=3)
    tracker.update(sv.Detections.empty())
    tracker.update(boxes(10))
    tracker.update(boxes(14))
    assert tracker.predict().xyxy.tolist() == [[18.0, 100.0, 58.0, 140.0]]
    assert tracker.predict().xyxy.tolist() == [[22.0, 100.0, 62.0, 140.0]]


def test_reset_forgets_every_track_and_restarts_the_ids():
    tracker = ByteTrackTracker(TrackerConfig(), fps=30)
    for _ in range(3):
        tracker.update(boxes(10, 200))
    tracker.reset()
    assert len(tracker.predict()) == 0
    assert tracker.update(boxes(300)).tracker_id.tolist() == [1]  # the first frame after a reset again


def crossing_of_weakly_seen_vehicle(weak_height_px: float) -> list[tuple[str, int, float]]:
    """A 40 x 30 px vehicle at 5 fps, 60 px a frame toward a line at x=300: seen with score 0.15 with
    its anchor at x=220 and 280 (before the line; boxes ``weak_height_px`` high), then with 0.9 at 340
    and 400. (direction, frame, crossed_s) of each count."""
    tracker = ByteTrackTracker(TrackerConfig(), fps=5)
    counter = LineCounter("gate", start=(300, 400), end=(300, 0), min_crossing_distance=6)
    tracker.update(sv.Detections.empty())  # ByteTrack confirms tracks born on its first frame at once
    events = []
    for index, (x, score) in enumerate([(200, 0.15), (260, 0.15), (320, 0.9), (380, 0.9)], start=1):
        height = weak_height_px if score < 0.25 else 30.0
        detections = sv.Detections(
            xyxy=np.array([[x, 130.0 - height, x + 40, 130.0]]), confidence=np.array([score]), class_id=np.array([2])
        )
        events += counter.update(tracker.update(detections), index, index / 5)
    return [(event.direction, event.frame_index, event.crossed_s) for event in events]


def test_a_vehicle_seen_weakly_up_to_a_line_and_confidently_past_it_counts_when_it_crossed():
    # Its track is born at anchor 340, past the line; it starts from the weak box of the frame before
    # (anchor 280 at 0.4 s): on the line a third of the way to 340 (0.6 s), confirmed at frame 4.
    assert crossing_of_weakly_seen_vehicle(weak_height_px=30) == [("in", 4, round(0.4 + 0.2 / 3, 4))]


def test_a_weak_box_of_another_size_is_not_where_a_new_track_came_from():
    # The same weak boxes, three times as high: another object; the track starts past the line.
    assert crossing_of_weakly_seen_vehicle(weak_height_px=90) == []


def crossings_of_box_then_far_box(far_size_px: tuple[float, float]) -> list[tuple[str, int]]:
    """At 10 fps a confident 100 x 90 px box seen once below a line at y=190 (its anchor at y=258),
    then nothing, then on the two frames after a confident box of ``far_size_px`` (width, height)
    above the line (anchor at y=125, same x), within a new track's reach of the first. (direction,
    track) of each crossing."""
    tracker = ByteTrackTracker(TrackerConfig(), fps=10)
    counter = LineCounter("main", start=(0, 190), end=(640, 190), min_crossing_distance=6)
    tracker.update(sv.Detections.empty())  # ByteTrack confirms tracks born on its first frame at once
    width, height = far_size_px
    frames = [(100.0, 90.0, 258.0), None, (width, height, 125.0), (width, height, 125.0)]
    events = []
    for index, box in enumerate(frames, start=1):
        detections = sv.Detections.empty()
        if box is not None:
            w, h, bottom = box
            detections = sv.Detections(
                xyxy=np.array([[320 - w / 2, bottom - h, 320 + w / 2, bottom]]),
                confidence=np.array([0.9]),
                class_id=np.array([2]),
            )
        events += counter.update(tracker.update(detections), index, index / 10)
    return [(event.direction, event.track_id) for event in events]


def test_a_box_of_a_like_size_within_reach_is_the_same_vehicle_crossing():
    # 80 x 70 px: a vehicle moving away, its box a little smaller; the crossing counts once.
    assert crossings_of_box_then_far_box((80.0, 70.0)) == [("out", 1)]


def test_a_far_small_box_within_reach_of_a_new_track_is_another_vehicle():
    # 30 x 23 px, a third of the first box's size: a far car, not the near one 0.2 s later; joining
    # them would count a crossing in the wrong direction that no vehicle made.
    assert crossings_of_box_then_far_box((30.0, 23.0)) == []
