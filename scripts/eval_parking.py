"""Score parking occupancy against labelled frames: accuracy, precision, recall and F1 per slot and overall.

Each labelled frame is judged on its own (no debounce): the detector runs on it and the occupancy
rule decides every slot, exactly as ``vpipe run`` does per frame. A PNG of the first labelled frame
shows right bays in green, missed ones (occupied, called free) in red and false ones (free, called
occupied) in orange.

Usage:
    python scripts/eval_parking.py sample_videos/pklot_pucpr --slots configs/slots/pklot_pucpr.yaml \\
        --labels tests/data/pklot_pucpr_ground_truth.yaml --config configs/parking.yaml --png runs/eval.png

The labels file is YAML: ``frames: {IMAGE_FILE_NAME: [occupied slot names], ...}``; slots not listed are free.
``--labels`` may also be a folder of PKLot XML files, one per image with the image's name (slot names
are the XML's space ids, as ``vpipe slots IMAGE --from XML`` writes them), or CNRPark-EXT's
``CNRPark+EXT.csv`` (the rows of one camera, ``--camera N`` or the frames folder's name ``cameraN``;
slot names are its slot ids, as ``vpipe slots IMAGE --from cameraN.csv`` writes them).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np
import yaml

os.environ.setdefault("YOLO_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.analytics.occupancy import OccupancyRule
from pipeline.analytics.parking import model_for_parking
from pipeline.config import load_config, load_slots
from pipeline.errors import ConfigError
from pipeline.models import Detector

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
COLOURS = {"right": (0, 200, 0), "missed": (0, 0, 255), "false": (0, 165, 255)}


@dataclass
class Tally:
    """Confusion counts of one slot (or all)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    wrong: list[str] = field(default_factory=list)

    def add(self, predicted: bool, truth: bool, frame: str) -> str:
        """Count one slot state; returns right, missed or false."""
        if predicted and truth:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif truth:
            self.fn += 1
        else:
            self.tn += 1
        if predicted != truth:
            self.wrong.append(frame)
        return "right" if predicted == truth else ("false" if predicted else "missed")

    def metrics(self) -> dict[str, float]:
        """Accuracy, precision, recall, F1 (1.0 where undefined: nothing to find, nothing claimed).

        Example:
            >>> Tally(tp=3, fp=1, fn=0, tn=6).metrics()
            {'accuracy': 0.9, 'precision': 0.75, 'recall': 1.0, 'f1': 0.8571}
        """
        total = self.tp + self.fp + self.fn + self.tn
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        values = {"accuracy": (self.tp + self.tn) / total if total else 1.0, "precision": precision}
        return {k: round(v, 4) for k, v in {**values, "recall": recall, "f1": f1}.items()}


def load_labels(path: Path, frames: Path, camera: str | None = None) -> dict[str, set[str]]:
    """Frame file name to the set of occupied slot names, from a labels YAML file, a folder of PKLot XML
    files (``<space id=.. occupied="1">``, one per image, named after it) or CNRPark-EXT's CSV."""
    if path.is_dir():
        return _pklot_labels(path, frames)
    if path.suffix.lower() == ".csv":
        return _cnrpark_labels(path, frames, camera)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("frames"), dict):
        raise ConfigError(f"{path}: expected a mapping with 'frames: {{image name: [occupied slots]}}'")
    return {str(name): set(occupied or []) for name, occupied in data["frames"].items()}


def _pklot_labels(folder: Path, frames: Path) -> dict[str, set[str]]:
    labels = {}
    for image in sorted(frames.iterdir()):
        xml = folder / f"{image.stem}.xml"
        if image.suffix.lower() in IMAGE_SUFFIXES and xml.exists():
            try:
                spaces = ElementTree.parse(xml).getroot().iter("space")
                labels[image.name] = {space.attrib["id"] for space in spaces if space.get("occupied") == "1"}
            except (ElementTree.ParseError, KeyError) as exc:
                raise ConfigError(f"{xml}: not a PKLot XML file ({type(exc).__name__}: {exc})") from None
    if not labels:
        raise ConfigError(f"{folder}: no PKLot XML file named after an image in {frames}")
    return labels


def _cnrpark_labels(path: Path, frames: Path, camera: str | None) -> dict[str, set[str]]:
    """Rows ``camera,datetime,...,occupancy,slot_id`` of one camera; an image ``2015-11-12_0713.jpg``
    takes the rows of datetime ``2015-11-12_07.13``."""
    if camera is None:
        match = re.fullmatch(r"camera(\d+)", frames.resolve().name, re.IGNORECASE)
        if match is None:
            raise ConfigError(f"{path}: give --camera N (the frames folder is not named cameraN)")
        camera = match.group(1)
    by_time: dict[str, set[str]] = {}
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = {"camera", "datetime", "occupancy", "slot_id"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path}: not a CNRPark-EXT labels CSV (no column {', '.join(sorted(missing))})")
        for row in reader:
            if row["camera"].lstrip("0") == camera.lstrip("0"):
                occupied = by_time.setdefault(row["datetime"].replace(".", ""), set())
                if row["occupancy"].strip() == "1":
                    occupied.add(row["slot_id"].strip())
    images = sorted(p for p in frames.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in by_time)
    if not images:
        raise ConfigError(f"{path}: no rows of camera {camera} at the times of the images in {frames}")
    return {image.name: by_time[image.stem] for image in images}


def evaluate(args: argparse.Namespace) -> dict:
    config = load_config(args.config, None)
    slots = {slot.name: slot.polygon for slot in load_slots(args.slots)}
    frames = Path(args.frames)
    labels = load_labels(Path(args.labels), frames, args.camera)
    parking = config.parking
    rule = OccupancyRule(
        slots,
        args.rule or parking.rule,
        args.min_overlap or parking.min_overlap,
        args.min_confidence if args.min_confidence is not None else parking.min_confidence,
        args.footprint_fraction or parking.footprint_fraction,
        parking.min_box_to_bay_area if args.min_box_to_bay_area is None else args.min_box_to_bay_area,
    )
    first = cv2.imread(str(frames / next(iter(labels))))
    if first is None:
        raise ConfigError(f"{frames / next(iter(labels))}: cannot read the first labelled frame")
    frame_size = (first.shape[1], first.shape[0])
    config.parking.slots = load_slots(args.slots)
    model = model_for_parking(config.model, parking, frame_size)
    if args.imgsz:
        model.imgsz = args.imgsz
    if args.min_confidence is not None:
        model.conf = min(model.conf, args.min_confidence)
    detector = Detector(model, frame_size=frame_size, origin=config.origin)
    detector(first)  # warm-up, not timed
    overall, per_slot, seconds = Tally(), {name: Tally() for name in slots}, []
    for index, (name, occupied) in enumerate(labels.items()):
        image = cv2.imread(str(frames / name))
        if image is None:
            raise ConfigError(f"{frames / name}: cannot read labelled frame")
        start = time.perf_counter()
        predicted = rule.occupied(detector(image))
        seconds.append(time.perf_counter() - start)
        unknown = occupied - set(slots)
        if unknown:
            raise ConfigError(f"{args.labels}: {name}: slots not in {args.slots}: {', '.join(sorted(unknown))}")
        outcomes = {s: per_slot[s].add(predicted[s], s in occupied, name) for s in slots}
        for s in slots:
            overall.add(predicted[s], s in occupied, name)
        if index == 0 and args.png:
            draw(image, slots, outcomes, Path(args.png))
    return {
        "overall": overall.metrics(),
        "wrong": {s: t.wrong for s, t in per_slot.items() if t.wrong},
        "per_slot": {s: t.metrics() for s, t in per_slot.items()},
        "frames": len(labels),
        "slot_states": overall.tp + overall.fp + overall.fn + overall.tn,
        "median_s_per_frame": round(float(np.median(seconds)), 4),
    }


def draw(image: np.ndarray, slots: dict, outcomes: dict[str, str], path: Path) -> None:
    """Write ``image`` with each bay outlined in the colour of its outcome."""
    for name, polygon in slots.items():
        points = np.round(np.asarray(polygon)).astype(np.int32)
        cv2.polylines(image, [points], True, COLOURS[outcomes[name]], 2)
    for row, (outcome, colour) in enumerate(COLOURS.items()):
        cv2.putText(image, outcome, (10, 30 + 28 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.8, colour, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("frames", metavar="FRAMES", help="folder holding the labelled images")
    parser.add_argument("--slots", required=True, help="slots file (YAML)")
    parser.add_argument(
        "--labels",
        required=True,
        help="labels file (YAML, see above), a folder of PKLot XML files named after the images, or CNRPark+EXT.csv",
    )
    parser.add_argument("--camera", default=None, help="CNRPark-EXT camera number (default: from FRAMES' name)")
    parser.add_argument(
        "--config", default=None, help="run config for the model and parking settings, e.g. configs/parking.yaml"
    )
    parser.add_argument("--png", default=None, help="write the first frame with right/missed/false bays here")
    parser.add_argument("--imgsz", type=int, default=None, help="override model.imgsz")
    parser.add_argument("--rule", default=None, help="override parking.rule")
    parser.add_argument("--min-overlap", type=float, default=None)
    parser.add_argument("--min-confidence", type=float, default=None)
    parser.add_argument("--footprint-fraction", type=float, default=None)
    parser.add_argument("--min-box-to-bay-area", type=float, default=None)
    parser.add_argument("--per-slot", action="store_true", help="print every slot's metrics")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args()
    try:
        result = evaluate(args)
    except OSError as exc:
        print(f"error: {exc.filename}: cannot read ({exc.strerror})", file=sys.stderr)
        return 2
    except (ConfigError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    if args.per_slot:
        for name, values in result["per_slot"].items():
            print(f"{name:<8} " + "  ".join(f"{k} {v:.3f}" for k, v in values.items()))
    print(
        f"{result['slot_states']} slot states on {result['frames']} frames: "
        + "  ".join(f"{k} {v:.4f}" for k, v in result["overall"].items())
        + f"  ({result['median_s_per_frame']:.3f} s per frame, median)"
    )
    for name, frames in result["wrong"].items():
        print(f"  wrong: {name} on {', '.join(frames)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
