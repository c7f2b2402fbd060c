"""Parking slots from other tools' files: PKLot XML, CVAT XML, LabelMe JSON, Ultralytics parking points JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline.errors import ConfigError
from pipeline.io.slot_formats import read_slot_file, slots_from_text
from tests.conftest import SAMPLES, run_vpipe

SQUARE = [(10.0, 20.0), (50.0, 20.0), (50.0, 60.0), (10.0, 60.0)]

PKLOT = """<?xml version="1.0" ?>
<parking id="pucpr">
  <space id="1" occupied="0">
    <rotatedRect><center x="30" y="40" /><size w="40" h="40" /><angle d="0" /></rotatedRect>
    <contour><point x="10" y="20" /><point x="50" y="20" /><point x="50" y="60" /><point x="10" y="60" /></contour>
  </space>
  <space id="2" occupied="1">
    <contour><point x="60" y="20" /><point x="90" y="20" /><point x="90" y="60" /></contour>
  </space>
</parking>"""

CVAT = """<annotations><version>1.1</version>
  <image id="0" name="lot.jpg" width="1280" height="720">
    <polygon label="A1" occluded="0" points="10.00,20.00;50.00,20.00;50.00,60.00;10.00,60.00" z_order="0" />
    <box label="slot" occluded="0" xtl="60" ytl="20" xbr="90" ybr="60" z_order="0" />
  </image>
</annotations>"""


def test_pklot_xml_uses_each_space_id_and_contour():
    assert slots_from_text(PKLOT, "pucpr.xml") == {"1": SQUARE, "2": [(60.0, 20.0), (90.0, 20.0), (90.0, 60.0)]}


def test_cvat_xml_polygons_and_boxes():
    slots = slots_from_text(CVAT, "annotations.xml")
    assert slots == {"A1": SQUARE, "slot2": [(60.0, 20.0), (90.0, 20.0), (90.0, 60.0), (60.0, 60.0)]}


def test_labelme_polygons_rectangles_and_repeated_labels():
    data = {
        "shapes": [
            {"label": "A1", "points": [list(p) for p in SQUARE], "shape_type": "polygon"},
            {"label": "A1", "points": [[60, 20], [90, 60]], "shape_type": "rectangle"},
        ],
        "imageWidth": 1280,
        "imageHeight": 720,
    }
    assert slots_from_text(json.dumps(data), "lot.json") == {
        "A1": SQUARE,
        "A1_2": [(60.0, 20.0), (90.0, 20.0), (90.0, 60.0), (60.0, 60.0)],
    }


def test_ultralytics_parking_points_are_numbered():
    data = [{"points": [list(p) for p in SQUARE]}, {"points": [[60, 20], [90, 20], [90, 60], [60, 60]]}]
    assert list(slots_from_text(json.dumps(data), "bounding_boxes.json")) == ["P1", "P2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<parking", "cannot parse"),
        ('{"shapes": [{"label": "A", "points": [[1, 2], [3, 4]], "shape_type": "polygon"}]}', "fewer than 3"),
        ("[]", "no slots found"),
        ('[{"pts": []}]', "not a PKLot XML"),
    ],
)
def test_bad_files_give_one_clear_error(text: str, message: str):
    with pytest.raises(ConfigError, match=message):
        slots_from_text(text, "x.json")


def test_cnrpark_camera_csv_boxes_are_scaled_from_the_2592x1944_frame():
    text = "SlotId,X,Y,W,H\n211,2592,0,-1296,972\n613,0,972,1296,972\n"
    slots = slots_from_text(text, "camera8.csv", (1000, 750))
    assert slots["613"] == [(0.0, 375.0), (500.0, 375.0), (500.0, 750.0), (0.0, 750.0)]
    assert slots["211"] == [(1000.0, 0.0), (500.0, 0.0), (500.0, 375.0), (1000.0, 375.0)]
    with pytest.raises(ConfigError, match=r"camera8\.csv: a CNRPark-EXT slots CSV needs the size of the images"):
        slots_from_text(text, "camera8.csv")
    with pytest.raises(ConfigError, match="not a PKLot XML"):
        slots_from_text("SlotId,X,Y\n1,2,3\n", "camera8.csv", (1000, 750))


def test_missing_file_names_it(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"missing\.json: cannot read"):
        read_slot_file(tmp_path / "missing.json")


def test_vpipe_slots_from_converts_to_a_slots_file_and_preview(tmp_path: Path):
    source = tmp_path / "pucpr.xml"
    source.write_text(PKLOT)
    out = tmp_path / "slots.yaml"
    image = SAMPLES / "pklot_pucpr" / "2012-09-16_06_22_55.jpg"
    child = run_vpipe("slots", image, "--from", source, "--output", out)
    assert child.returncode == 0, child.stderr
    assert [(s["name"], s["polygon"]) for s in yaml.safe_load(out.read_text())] == [
        ("1", [list(p) for p in SQUARE]),
        ("2", [[60.0, 20.0], [90.0, 20.0], [90.0, 60.0]]),
    ]
    assert out.with_suffix(".png").stat().st_size > 0
    both = run_vpipe("slots", image, "--from", source, "--grid", "2x2", "--output", out)
    assert both.returncode == 2 and both.stderr.count("\n") == 1 and "either --grid" in both.stderr
