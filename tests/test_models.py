"""Weight resolution: local path, then models/, then Ultralytics (only when online)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from scipy.optimize import linear_sum_assignment
from ultralytics import YOLO

from pipeline.config import ModelConfig
from pipeline.errors import ConfigError, ModelError, SourceError
from pipeline.io.sources.files import open_source
from pipeline.models import (
    DEFAULT_CALIBRATION,
    REPO_MODELS_DIR,
    Detector,
    OpenVINOModelRunner,
    ThreadCountTrial,
    exported_model,
    input_size,
    resolve_weights,
    select_backend,
    select_device,
)
from pipeline.models.quantization import calibration_images, cpu_has_int8_dot_product, select_precision
from tests.conftest import SAMPLES


def test_defaults_per_task_are_the_bundled_models():
    assert Path(resolve_weights(None, None)) == REPO_MODELS_DIR / "yolo11n.pt"
    assert Path(resolve_weights(None, "segment")) == REPO_MODELS_DIR / "yolo11n-seg_int8_openvino_model"


def test_an_existing_path_wins(tmp_path: Path):
    weights = tmp_path / "yolo11n.pt"
    weights.write_bytes(b"x")
    assert resolve_weights(str(weights), "detect") == str(weights)


def test_a_bare_name_is_found_in_models():
    assert Path(resolve_weights("yolo11n-seg.pt", None)) == REPO_MODELS_DIR / "yolo11n-seg.pt"


def test_unknown_model_offline_says_what_to_do(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"model 'yolo11x.pt' not found .* YOLO_OFFLINE=0"):
        resolve_weights("yolo11x.pt", "detect")


def test_unknown_model_online_is_handed_to_ultralytics(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("YOLO_OFFLINE", "0")
    assert resolve_weights("yolo11x.pt", "detect") == "yolo11x.pt"


def test_detector_returns_named_classes_and_filters_them(highway_frames: list[np.ndarray]):
    """Highway frame 13 holds cars and, at the default threshold, a 'train' (the lorry on the left):
    the filter keeps the cars and drops the rest."""
    image = highway_frames[1]
    everything = Detector(ModelConfig(), frame_size=(960, 540))(image)
    assert {"car"} < set(everything.data["class_name"])  # something besides cars to filter out
    detector = Detector(ModelConfig(classes=["car", "truck"]), frame_size=(960, 540))
    assert detector.task == "detect" and detector.names[2] == "car"
    assert detector.class_ids == [2, 7]
    detections = detector(image)
    assert detections.mask is None
    assert set(detections.data["class_name"]) == {"car"} and set(detections.class_id) == {2}
    assert len(detections) == list(everything.data["class_name"]).count("car")


def test_unknown_class_name_is_a_config_error():
    with pytest.raises(ConfigError, match=r"cfg.yaml: model.classes: unknown class 'cars' for yolo11n.pt"):
        Detector(ModelConfig(classes=["cars"]), origin="cfg.yaml")


def test_task_mismatch_is_reported():
    with pytest.raises(ModelError, match="is a 'detect' model, but the task is 'segment'"):
        Detector(ModelConfig(weights="yolo11n.pt", task="segment"))


def test_unreadable_weights(tmp_path: Path):
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"broken\.pt: cannot load model"):
        Detector(ModelConfig(weights=str(weights)))


def test_input_size_keeps_the_aspect_ratio_and_never_upscales():
    assert input_size(960, 540, 640) == (384, 640)
    assert input_size(320, 240, 640) == (256, 320)
    assert input_size(1920, 1080, 1280) == (736, 1280)
    assert input_size(320, 240, 640, upscale=True) == (480, 640)


def test_auto_backend_is_the_fastest_installed_for_the_device():
    assert select_backend("auto", "cpu") == "openvino"  # measured fastest on CPU here (scripts/benchmark.py)
    assert select_backend("auto", "cuda:0") == "torch"
    assert select_backend("onnx", "cpu") == "onnx"


def test_a_bare_gpu_index_is_that_cuda_device_and_gets_the_gpu_backend():
    """Ultralytics and the config accept "0" for the first GPU; unmapped, such a run took the CPU's backend."""
    assert select_device("0") == "cuda:0"
    assert select_backend("auto", select_device("2")) == "torch"
    assert select_device("cpu") == "cpu" and select_device("cuda:1") == "cuda:1"


@pytest.fixture(scope="module")
def highway_frames() -> list[np.ndarray]:
    return [frame.image for frame in open_source(str(SAMPLES / "highway.mp4"), max_frames=40)][::13]


@pytest.mark.parametrize(("backend", "precision"), [("onnx", "fp32"), ("openvino", "fp32"), ("openvino", "int8")])
def test_exported_backends_find_what_pytorch_finds(
    tmp_path: Path, backend: str, precision: str, highway_frames: list[np.ndarray]
):
    weights = tmp_path / "yolo11n.pt"
    shutil.copy(REPO_MODELS_DIR / "yolo11n.pt", weights)
    config = ModelConfig(
        weights=str(weights), backend=backend, precision=precision, classes=["car", "truck"], conf=0.25
    )
    exported = Detector(config, frame_size=(960, 540))
    assert (exported.backend, exported.precision, exported.input_size) == (backend, precision, (384, 640))
    assert ".vpipe-cache" in exported.model_path and "384x640" in exported.model_path
    reference = Detector(ModelConfig(weights=str(weights), backend="torch", classes=["car", "truck"], conf=0.25))
    compared = 0
    for image in highway_frames:
        ours, theirs = exported(image), reference(image)
        confident = theirs[theirs.confidence > 0.5]
        if len(confident) == 0:
            continue
        iou = sv.box_iou_batch(confident.xyxy, ours.xyxy)
        assert (iou.max(axis=1) > 0.8).all(), f"{backend} missed a box PyTorch found with confidence > 0.5"
        compared += 1
    assert compared >= 3  # of the 4 frames: the comparison really happened


def test_exports_are_cached_by_content_and_size(tmp_path: Path):
    weights = tmp_path / "yolo11n.pt"
    shutil.copy(REPO_MODELS_DIR / "yolo11n.pt", weights)
    first = exported_model(weights, "onnx", (256, 320))
    stamp = first.stat().st_mtime_ns
    assert exported_model(weights, "onnx", (256, 320)) == first
    assert first.stat().st_mtime_ns == stamp  # reused, not re-exported
    other = exported_model(weights, "onnx", (384, 640))
    assert other != first and other.exists()
    assert sorted(p.name for p in (tmp_path / ".vpipe-cache").iterdir() if p.is_dir()) == sorted(
        [first.parent.name, other.parent.name]
    )


# OpenVINO may run the float layers in bf16 (its CPU default where the CPU has AMX or AVX-512 BF16):
# 8 mantissa bits, a relative error of up to 2**-8 per operation. Across the network that moves a box
# edge by a pixel or so and a score by a few hundredths, so twins are paired by overlap (never by sort
# order: near-equal scores swap places), and a box on the edge of a decision may exist on one side only:
# its score near the threshold, or its overlap with a neighbour near NMS's IoU threshold.
_BOX_TOLERANCE_PX = 4.0
_SCORE_TOLERANCE = 0.05
_NMS_IOU = 0.7
_IOU_TOLERANCE = 0.1


def _borderline(detections: sv.Detections, index: int, conf: float) -> bool:
    """Whether the threshold or NMS could keep or drop this box on a rounding difference."""
    if detections.confidence[index] < conf + _SCORE_TOLERANCE:
        return True
    overlaps = sv.box_iou_batch(detections.xyxy[index : index + 1], detections.xyxy)[0]
    overlaps[index] = 0.0
    return bool(overlaps.max() > _NMS_IOU - _IOU_TOLERANCE)


def _pair_by_overlap(ours: sv.Detections, theirs: sv.Detections) -> list[tuple[int, int]]:
    """The one-to-one pairing of two detectors' boxes with the largest total IoU (pairs with IoU > 0.5)."""
    if not len(ours) or not len(theirs):
        return []
    iou = sv.box_iou_batch(ours.xyxy, theirs.xyxy)
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] > 0.5]


def _assert_twins(ours: sv.Detections, theirs: sv.Detections, conf: float, masks: bool = False) -> int:
    """Every box clear of the thresholds has a twin of its class within the tolerances; returns the pairs."""
    pairs = _pair_by_overlap(ours, theirs)
    for side, detections, paired in (("ours", ours, {a for a, _ in pairs}), ("theirs", theirs, {b for _, b in pairs})):
        alone = [i for i in range(len(detections)) if i not in paired]
        assert all(_borderline(detections, i, conf) for i in alone), f"{side}: a box clear of both thresholds is alone"
    for a, b in pairs:
        assert ours.class_id[a] == theirs.class_id[b]
        assert ours.data["class_name"][a] == theirs.data["class_name"][b]
        assert np.abs(ours.xyxy[a] - theirs.xyxy[b]).max() < _BOX_TOLERANCE_PX
        assert abs(ours.confidence[a] - theirs.confidence[b]) < _SCORE_TOLERANCE
        if masks:
            assert ours.mask is not None and theirs.mask is not None
            union = (ours.mask[a] | theirs.mask[b]).sum()
            assert (ours.mask[a] & theirs.mask[b]).sum() / union > 0.85
    return len(pairs)


def _predict(predictor: YOLO, image: np.ndarray, size: tuple[int, int], conf: float) -> sv.Detections:
    """Ultralytics' predictor with the settings our detector runs (car, truck, bus; class-agnostic NMS)."""
    result = predictor.predict(
        image, imgsz=size, conf=conf, iou=0.7, classes=[2, 7, 5], agnostic_nms=True, verbose=False
    )
    return sv.Detections.from_ultralytics(result[0])


@pytest.mark.parametrize("exact_fp32", [True, False], ids=["f32", "openvino-default"])
def test_openvino_boxes_equal_ultralytics_predictor_on_the_same_export(
    exact_fp32: bool, highway_frames: list[np.ndarray]
):
    """Our runner in f32 and at OpenVINO's default (bf16 where the CPU has it) against Ultralytics'
    predictor, which runs OpenVINO's default: both ways, on any CPU, every box has its twin."""
    config = ModelConfig(backend="openvino", precision="fp32", classes=["car", "truck", "bus"], conf=0.1)
    detector = Detector(config, frame_size=(960, 540))
    assert isinstance(detector.runner, OpenVINOModelRunner)
    runner = OpenVINOModelRunner(Path(detector.model_path), detector.runner.decoder, exact_fp32=exact_fp32)
    predictor = YOLO(detector.model_path, task="detect")
    paired = 0
    for image in highway_frames:
        ours = runner.start([image])()[0]
        theirs = _predict(predictor, image, detector.input_size, 0.1)
        assert len(ours) > 0 and len(theirs) > 0
        paired += _assert_twins(ours, theirs, conf=0.1)
    assert paired >= 12  # the comparison really happened


def test_the_summary_names_the_precision_openvino_computes_in():
    """The summary's ``inference_precision`` is what OpenVINO compiled the float layers to: its CPU
    default (bf16 on CPUs with AMX or AVX-512 BF16, f32 elsewhere) for fp32 and int8 models alike,
    and f32 where asked for exactly."""
    import openvino as ov

    default = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    fp32 = Detector(ModelConfig(backend="openvino", precision="fp32", classes=["car"]), frame_size=(960, 540))
    int8 = Detector(ModelConfig(backend="openvino", precision="int8", classes=["car"]), frame_size=(960, 540))
    assert (fp32.describe()["precision"], fp32.describe()["inference_precision"]) == ("fp32", default)
    assert (int8.describe()["precision"], int8.describe()["inference_precision"]) == ("int8", default)
    assert isinstance(fp32.runner, OpenVINOModelRunner)
    exact = OpenVINOModelRunner(Path(fp32.model_path), fp32.runner.decoder, exact_fp32=True)
    assert exact.inference_precision == "f32"


@pytest.mark.parametrize(
    ("weights", "precision"),
    [("yolo11n-seg.pt", "fp32"), ("yolo11n-seg_int8_openvino_model", "auto")],
    ids=["our-export", "bundled-dynamic-int8"],
)
def test_openvino_masks_match_ultralytics_predictor_on_the_same_export(
    weights: str, precision: str, highway_frames: list[np.ndarray]
):
    """Our segmentation path (boxes and masks at the frame's size) against Ultralytics' predictor and
    ``from_ultralytics`` on the same model: our own fixed-size export, and the bundled dynamic-input
    folder (fixed to our input size). Ours runs in f32 for ``fp32``, the predictor at OpenVINO's
    default (bf16 on CPUs that have it), so detections are paired by overlap and masks compared by IoU."""
    config = ModelConfig(
        weights=weights,
        task="segment",
        backend="openvino",
        precision=precision,
        classes=["car", "truck", "bus"],
        conf=0.25,
    )
    detector = Detector(config, frame_size=(960, 540))
    assert isinstance(detector.runner, OpenVINOModelRunner) and detector.runner.decoder.masks
    predictor = YOLO(detector.model_path, task="segment")
    paired = 0
    for image in highway_frames:
        ours = detector(image)
        theirs = _predict(predictor, image, detector.input_size, 0.25)
        assert ours.mask is not None and theirs.mask is not None
        assert ours.mask.shape[1:] == theirs.mask.shape[1:] == image.shape[:2]
        paired += _assert_twins(ours, theirs, conf=0.25, masks=True)
    assert paired >= 12


@pytest.mark.parametrize("objects", [1, 5, 6, 7])
def test_postprocessing_keeps_exactly_the_confident_boxes_whatever_their_number(objects: int):
    """Known raw outputs: ``objects`` separate boxes, each confident in its own class, among anchors
    that are all under the threshold. Ultralytics' NMS takes an input with 6 anchors left for an
    end-to-end model's output, so six is the case that once crashed."""
    detector = Detector(ModelConfig(backend="openvino", conf=0.25), frame_size=(640, 384))
    assert isinstance(detector.runner, OpenVINOModelRunner)
    assert detector.runner.decoder.size == (384, 640)  # frame = input: no scaling
    prediction = np.zeros((1, 84, 5040), np.float32)
    prediction[0, 4:, :] = 0.2  # every anchor scores under the threshold...
    expected = []
    for index in range(objects):  # ...but these
        anchor, centre_x = 100 + 700 * index, 40.0 + 90 * index
        prediction[0, :4, anchor] = [centre_x, 200.0, 60.0, 30.0]
        prediction[0, 4 + index, anchor] = 0.9
        expected.append([centre_x - 30, 185.0, centre_x + 30, 215.0])
    detections = detector.runner.decoder(prediction, None, (384, 640))
    order = np.argsort(detections.class_id)
    assert list(detections.class_id[order]) == list(range(objects))
    np.testing.assert_allclose(detections.xyxy[order], expected, atol=1e-3)
    np.testing.assert_allclose(detections.confidence, 0.9, atol=1e-6)


@pytest.mark.parametrize("threads", [0, 1], ids=["auto", "one-thread"])
def test_pipelined_detection_gives_each_frame_its_own_result(highway_frames: list[np.ndarray], threads: int):
    """Several frames in flight at once (OpenVINO compiled for throughput, as the pipeline runs it):
    each result is its own frame's, the same as detecting that frame alone. On one thread, OpenVINO
    queues the frames in flight on its one stream. With the thread count left to a trial, the
    frames alternate between every core and one fewer (blocks of one batch here), with the frames
    of one still in flight when the next starts."""
    config = ModelConfig(backend="openvino", precision="fp32", classes=["car", "truck", "bus"])
    alone = Detector(config, frame_size=(960, 540))
    pipelined = Detector(replace(config, inference_threads=threads), frame_size=(960, 540), pipelined=True)
    assert pipelined.in_flight >= 2 and alone.in_flight == 1
    every_core = alone.inference_threads or 0
    assert every_core > 1  # this test needs a machine with more than one core
    if threads:
        assert isinstance(pipelined.runner, OpenVINOModelRunner)
        assert pipelined.runner._compiled.get_property("INFERENCE_NUM_THREADS") == threads
    else:
        assert isinstance(pipelined.runner, ThreadCountTrial)
        trial = pipelined.runner.trial
        assert [model._compiled.get_property("INFERENCE_NUM_THREADS") for model in trial.candidates.values()] == [
            every_core,
            every_core - 1,
        ]
        trial.block_frames = 1
    blank = np.full_like(highway_frames[0], 90)
    mirrored = np.ascontiguousarray(highway_frames[1][:, ::-1])
    frames = [highway_frames[0], blank, mirrored, highway_frames[2], blank, highway_frames[3]]
    pending = [pipelined.start(frames[i : i + 2]) for i in range(0, len(frames), 2)]  # all six in flight
    results = [detections for finish in pending for detections in finish()]
    assert [len(r) for r in results] == [len(alone(frame)) for frame in frames]
    assert len(results[1]) == len(results[4]) == 0 and min(len(results[i]) for i in (0, 2, 3, 5)) > 0
    for frame, result in zip(frames, results, strict=True):
        expected = alone(frame)
        order_result, order_expected = np.argsort(-result.confidence), np.argsort(-expected.confidence)
        assert np.abs(result.xyxy[order_result] - expected.xyxy[order_expected]).max(initial=0) < 1.0
    if not threads:  # batches 1 and 3 went to every core, 2 to one fewer: each made a request per frame
        assert isinstance(pipelined.runner, ThreadCountTrial)
        candidates = pipelined.runner.trial.candidates.values()
        assert [len(model._idle) for model in candidates] == [4, 2]


def test_int8_needs_openvino_and_auto_follows_the_cpu(tmp_path: Path):
    with pytest.raises(ModelError, match="int8 needs the openvino backend"):
        select_precision("int8", "onnx", "cpu")
    assert select_precision("auto", "torch", "cuda:0") == "fp32"
    assert select_precision("fp32", "openvino", "cpu") == "fp32"
    vnni, plain = tmp_path / "vnni", tmp_path / "plain"
    vnni.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert cpu_has_int8_dot_product(vnni) and not cpu_has_int8_dot_product(plain)
    assert not cpu_has_int8_dot_product(tmp_path / "missing")
    # This machine's own flags, read here rather than through the function under test.
    flags = set(
        next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    )
    expected = "int8" if flags & {"avx512_vnni", "avx_vnni", "amx_int8"} else "fp32"
    assert select_precision("auto", "openvino", "cpu") == expected


def test_int8_exports_are_cached_per_calibration_set(tmp_path: Path):
    weights = tmp_path / "yolo11n.pt"
    shutil.copy(REPO_MODELS_DIR / "yolo11n.pt", weights)
    fp32 = exported_model(weights, "openvino", (256, 320))
    generic = exported_model(weights, "openvino", (256, 320), "int8")
    assert generic != fp32 and "int8-default" in str(generic)
    stamp = next(generic.glob("*.bin")).stat().st_mtime_ns
    assert exported_model(weights, "openvino", (256, 320), "int8") == generic
    assert next(generic.glob("*.bin")).stat().st_mtime_ns == stamp  # reused, not quantized again
    own = exported_model(weights, "openvino", (256, 320), "int8", calibration=str(SAMPLES / "highway.mp4"))
    assert own not in (generic, fp32) and own.exists()
    # int8 weights: the quantized model is much smaller than the fp32 one
    assert next(own.glob("*.bin")).stat().st_size < 0.5 * next(fp32.glob("*.bin")).stat().st_size


def test_calibration_frames_come_from_the_given_source():
    frames = calibration_images(str(SAMPLES / "highway.mp4"), limit=10)
    assert len(frames) == 10 and frames[0].shape == (540, 960, 3)
    # spread over the clip (every 33rd of 335 frames), not its first ten
    every_frame = [frame.image for frame in open_source(str(SAMPLES / "highway.mp4"))]
    assert all(np.array_equal(image, every_frame[33 * k]) for k, image in enumerate(frames))
    bundled = calibration_images(str(DEFAULT_CALIBRATION))
    assert len(bundled) == len(list(DEFAULT_CALIBRATION.glob("*.jpg"))) >= 40
    with pytest.raises(SourceError):
        calibration_images(str(SAMPLES / "missing.mp4"))


def test_agnostic_nms_leaves_one_box_per_object():
    """Per-class NMS keeps a car and a 'truck' box on the same vehicle (two tracks, two counts);
    agnostic NMS (the default) keeps one. The first frames of street_topdown.mp4 have such pairs
    (IoU ~0.97, fp32 and int8 alike)."""
    frames = [frame.image for frame in open_source(str(SAMPLES / "street_topdown.mp4"), max_frames=12)]
    vehicles = ["car", "truck", "bus", "motorcycle"]

    def worst_overlap(agnostic: bool) -> float:
        detector = Detector(ModelConfig(classes=vehicles, agnostic_nms=agnostic), frame_size=(640, 360))
        worst = 0.0
        for image in frames:
            detections = detector(image)
            if len(detections) > 1:
                iou = sv.box_iou_batch(detections.xyxy, detections.xyxy)
                np.fill_diagonal(iou, 0.0)
                worst = max(worst, float(iou.max()))
        return worst

    assert worst_overlap(agnostic=False) > 0.7  # the duplicate exists without it
    assert worst_overlap(agnostic=True) <= 0.7
