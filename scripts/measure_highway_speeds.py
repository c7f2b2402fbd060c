"""Measure the ground truth of tests/data/highway_ground_truth.yaml's ``speed`` section, without a model.

1. Every frame is aligned to frame 150 (OpenCV ECC, translation: the camera drifts by a few pixels)
   and the median of the aligned frames is the empty road.
2. The blocks of the dashed block line along the middle of the carriageway give a 1-D projective
   map from image row to distance along the road, in block periods; the thin dashed line on the
   right, measured on the same map, shows which marking standard (and so which metres) they are.
3. Each hand-counted vehicle is followed as a foreground blob; the lowest row of the blob, mapped
   to metres, is fitted against time.

Usage::

    python scripts/measure_highway_speeds.py     # prints the fit, the marking check and each speed
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "sample_videos" / "highway.mp4"
TRUTH = REPO / "tests" / "data" / "highway_ground_truth.yaml"
REFERENCE_FRAME = 150
BLOCK_PERIOD_M = 4.0  # Dutch blokmarkering: 1 m blocks, 3 m gaps
FPS = 30000 / 1001
SIDE_BY_SIDE_X = {56: 556, 57: 707, 127: 714, 130: 535}  # blob centre x of vehicles crossing together


def aligned_frames() -> np.ndarray:
    with av.open(str(CLIP)) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    reference = cv2.cvtColor(frames[REFERENCE_FRAME], cv2.COLOR_BGR2GRAY).astype(np.float32)
    road = np.zeros(reference.shape, np.uint8)
    cv2.fillPoly(road, [np.array([(0, 540), (430, 0), (600, 0), (960, 540)])], 255)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    out = []
    for frame in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
        _, warp = cv2.findTransformECC(reference, gray, np.eye(2, 3, dtype=np.float32), 0, criteria, road, 5)
        out.append(cv2.warpAffine(frame, warp, (960, 540), flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP))
    return np.stack(out)


def bright_runs(gray: np.ndarray, x_of_row, half: int, background: int, threshold: float) -> list[tuple[int, int]]:
    """(first, last) rows where a marking along ``x_of_row`` is brighter than the road beside it."""
    runs, start = [], None
    for y in range(100, 540):
        x = round(x_of_row(y))
        bright = gray[y, x - half : x + half + 1].max() - np.median(gray[y, x - background : x + background + 1])
        if bright > threshold and start is None:
            start = y
        elif bright <= threshold and start is not None:
            runs.append((start, y - 1))
            start = None
    if start is not None:  # cut by the bottom of the frame
        runs.append((start, 539))
    return [run for run in runs if run[1] - run[0] >= 2]


def fit_row_map(blocks: list[tuple[int, int]]) -> tuple[np.ndarray, float, np.ndarray]:
    """Row = (a s + b) / (c s + 1), with s in block periods from the nearest block's near end, fitted to
    both ends of every block (a block's far end is at s = k + its length, tried on a grid).

    Returns (a, b, c), the blocks' length as a fraction of their period, and the residuals in rows.
    """
    best = None
    for length in np.arange(0.15, 0.35, 0.001):
        ends = [(k, near + 0.5) for k, (_, near) in enumerate(blocks)]
        ends += [(k + length, far - 0.5) for k, (far, _) in enumerate(blocks)]
        design = np.array([[s, 1.0, -s * y] for s, y in ends])
        rows = np.array([y for _, y in ends])
        weights = np.ones(len(rows))
        for _ in range(10):  # reweighted so that the algebraic error becomes the error in rows
            abc = np.linalg.lstsq(design * weights[:, None], rows * weights, rcond=None)[0]
            weights = 1 / (abc[2] * np.array([s for s, _ in ends]) + 1)
        residual = np.array([(abc[0] * s + abc[1]) / (abc[2] * s + 1) - y for s, y in ends])
        if best is None or (residual**2).sum() < (best[2] ** 2).sum():
            best = (abc, float(length), residual)
    assert best is not None
    return best


def period(abc: np.ndarray, row: float) -> float:
    a, b, c = abc
    return (row - b) / (a - c * row)


def marking_centre_x(gray: np.ndarray, row: int, x: int, half: int) -> float | None:
    """Brightness-weighted x of the marking near ``x`` on ``row``."""
    segment = gray[row, x - half : x + half + 1]
    weights = np.clip(segment - np.median(gray[row, x - 60 : x + 61]) - 20, 0, None)
    return x - half + float((weights * np.arange(len(segment))).sum() / weights.sum()) if weights.sum() else None


def calibration(gray, frame_gray, abc, blocks, dashes, metres) -> None:
    """The speed calibration: the block line at x=0 and the right dashed line at x=3.5 m (a lane), at the
    rows of block ends 0 and 5; checks that its homography keeps the block fit's metres per pixel."""
    lines = []
    for image, runs, x_of_row, half in (
        (gray, blocks, lambda y: 497 + (480 - 497) * (y - 150) / 360, 25),
        (frame_gray, dashes, lambda y: 526.9 + 0.3925 * y, 8),
    ):
        points = [
            (y, marking_centre_x(image, y, round(x_of_row(y)), half))
            for far, near in runs
            if far > 150  # the far markings are a few pixels tall and blur into each other
            for y in range(far, near)
        ]
        ys, xs = np.array([(y, x) for y, x in points if x is not None]).T
        lines.append(np.polyfit(ys, xs, 1))
    meet = (lines[0][1] - lines[1][1]) / (lines[1][0] - lines[0][0])
    for name, (slope, intercept) in zip(("block line", "right line"), lines, strict=True):
        print(f"{name}: x = {slope:.4f} y + {intercept:.2f}")
    print(f"block line and right line meet at row {meet:.1f}")
    a, b, c = abc
    near, far = b, (a * 5 + b) / (c * 5 + 1)  # rows of block ends 0 and 5
    image = [(np.polyval(lines[0], far), far), (np.polyval(lines[1], far), far)]
    image += [(np.polyval(lines[1], near), near), (np.polyval(lines[0], near), near)]
    world = [(0, 5 * BLOCK_PERIOD_M), (3.5, 5 * BLOCK_PERIOD_M), (3.5, 0), (0, 0)]
    print(f"image_points: {[[round(float(x), 1), round(float(y), 1)] for x, y in image]}, world_points: {world}")
    homography = cv2.getPerspectiveTransform(np.float32(image), np.float32(world))
    rows = np.arange(180, 526, 5.0)
    along = cv2.perspectiveTransform(np.array([[[np.polyval(lines[0], y), y]] for y in rows]), homography)[:, 0, 1]
    ratio = np.gradient(along, rows) / np.gradient(metres(rows), rows)
    print(f"metres per pixel, homography / block fit, rows 180-525: {ratio.min():.4f}-{ratio.max():.4f}")


def main() -> None:
    frames = aligned_frames()
    background = np.median(frames, axis=0)
    gray = cv2.cvtColor(background.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(float)
    blocks = bright_runs(gray, lambda y: 497 + (480 - 497) * (y - 150) / 360, 20, 60, 35)[::-1]
    blocks = [run for run in blocks if run[1] < 530][:10]
    abc, block_length, residual = fit_row_map(blocks)
    print(f"blocks (far, near rows): {blocks}")
    rms, worst = np.sqrt((residual**2).mean()), np.abs(residual).max()
    print(f"block length {block_length:.3f} periods; row residuals rms {rms:.2f} px, max {worst:.2f} px")
    print(f"horizon at row {abc[0] / abc[2]:.1f}")
    frame_gray = cv2.cvtColor(frames[REFERENCE_FRAME], cv2.COLOR_BGR2GRAY).astype(float)
    all_dashes = bright_runs(frame_gray, lambda y: 526.9 + 0.3925 * y, 6, 40, 15)
    dashes = [(far, near) for far, near in all_dashes if near < 530 and near - far > 8]  # whole dashes
    near_ends = [period(abc, near + 0.5) for _, near in dashes]
    lengths = [round(float(period(abc, far - 0.5) - period(abc, near + 0.5)), 2) for far, near in dashes]
    print(f"right dashes {dashes}: lengths {lengths} block periods")
    print(f"  periods {np.round(-np.diff(near_ends), 2).tolist()} block periods")

    def metres(row: np.ndarray) -> np.ndarray:
        return BLOCK_PERIOD_M * period(abc, row)

    calibration(gray, frame_gray, abc, blocks, all_dashes, metres)

    road = np.zeros((540, 960), np.uint8)
    cv2.fillPoly(road, [np.array([(75, 540), (445, 20), (575, 20), (920, 540)])], 1)

    def blobs(index: int) -> list[tuple[np.ndarray, np.ndarray]]:
        moving = (np.abs(frames[index].astype(np.int16) - background).sum(axis=2) > 60) & (road > 0)
        moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        moving = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(moving)
        return [(stats[k], labels == k) for k in range(1, count) if stats[k][4] > 400]

    crossings = yaml.safe_load(TRUTH.read_text())["lines"]["main"]["crossings"]
    for crossing in crossings:
        frame = crossing["frame"]
        spanning = [(s, m) for s, m in blobs(frame) if s[1] < 330 < s[1] + s[3]]
        stats, mask = min(spanning, key=lambda b: abs(b[0][0] + b[0][2] / 2 - SIDE_BY_SIDE_X.get(frame, 0)))
        lowest = {frame: stats[1] + stats[3] - 1}
        for step in (-1, 1):
            previous, index = mask, frame + step
            while 0 <= index < len(frames) and (candidates := blobs(index)):
                best = max(candidates, key=lambda b: (b[1] & previous).sum())
                if not (best[1] & previous).any():
                    break
                lowest[index], previous, index = best[0][1] + best[0][3] - 1, best[1], index + step
        speeds = []
        for top in (180, 250):
            used = np.array([i for i in sorted(lowest) if top <= lowest[i] <= 525])
            rows = np.array([lowest[i] for i in used], float)
            speeds.append(-np.polyfit(used / FPS, metres(rows), 1)[0] * 3.6)
        print(f"frame {frame}: {speeds[0]:.1f} km/h (rows 180-525), {speeds[1]:.1f} km/h (rows 250-525)")


if __name__ == "__main__":
    main()
