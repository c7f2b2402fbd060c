"""Several cameras' frames through a PyTorch YOLO model in one call, with the letterbox, the
normalisation and NMS done by torch and torchvision on the model's device: on a GPU, only the frames'
bytes go up and only the kept boxes come back, with no per-frame Python in between.

The steps are Ultralytics' predictor's (:mod:`pipeline.models.preprocess`'s letterbox, NMS over the
best class score, boxes scaled back to the frame), batched; tests hold them to the predictor's boxes
on CPU tensors. Boxes only (no masks). :class:`TorchBatchRunner` is the detector's runner for PyTorch
detection weights (``backend: torch``, the default on a GPU), so ``vpipe run`` of a ``.streams`` list
sends every camera's ready frames up in one call.

Example:
    >>> import torch
    >>> frames = torch.zeros((2, 540, 960, 3), dtype=torch.uint8)
    >>> letterbox_batch(frames, (384, 640)).shape
    torch.Size([2, 3, 384, 640])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import supervision as sv
import torch
import torch.nn.functional as F
import torchvision

from pipeline.models.preprocess import PAD_VALUE, letterbox_window

if TYPE_CHECKING:
    from pipeline.models.openvino_runner import PendingDetections

MAX_WH = 7680
"""Offset between classes in a per-class NMS (boxes of two classes never overlap): Ultralytics' value."""


def letterbox_batch(frames: torch.Tensor, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """BGR uint8 frames (B, H, W, 3), all of one size, to the model's input (B, 3, h, w): resized to fit
    ``size`` (h, w), centred on Ultralytics' grey, RGB, in [0, 1], as ``dtype``."""
    count, height, width = frames.shape[:3]
    top, left, new_height, new_width = letterbox_window((height, width), size)
    pictures = frames.permute(0, 3, 1, 2).flip(1).float()  # NHWC BGR -> NCHW RGB
    if (new_height, new_width) != (height, width):
        # OpenCV's INTER_LINEAR (half-pixel centres, no antialiasing), rounded to bytes as it does
        pictures = F.interpolate(pictures, size=(new_height, new_width), mode="bilinear", align_corners=False)
        pictures = pictures.round().clamp(0, 255)
    blob = torch.full((count, 3, *size), float(PAD_VALUE), dtype=torch.float32, device=frames.device)
    blob[:, :, top : top + new_height, left : left + new_width] = pictures
    return (blob / 255.0).to(dtype)


def nms_batch(
    prediction: torch.Tensor,
    conf: float,
    iou: float,
    class_ids: Sequence[int] | None = None,
    agnostic: bool = True,
    max_det: int = 300,
) -> list[torch.Tensor]:
    """NMS per frame of a batch of raw outputs (B, 4 + classes, anchors): boxes as centre and size.

    Returns:
        Per frame, (n, 6) rows of x1, y1, x2, y2, score, class at the model input, best first.
    """
    kept = []
    allowed = None if class_ids is None else torch.as_tensor(list(class_ids), device=prediction.device)
    for rows in prediction.transpose(1, 2).float():
        scores, classes = rows[:, 4:].max(dim=1)
        wanted = scores > conf
        if allowed is not None:
            wanted &= torch.isin(classes, allowed)
        boxes, scores, classes = (
            torchvision.ops.box_convert(rows[wanted, :4], "cxcywh", "xyxy"),
            scores[wanted],
            classes[wanted],
        )
        offsets = 0 if agnostic else classes[:, None].float() * MAX_WH
        index = torchvision.ops.nms(boxes + offsets, scores, iou)[:max_det]
        kept.append(torch.cat([boxes[index], scores[index, None], classes[index, None].float()], dim=1))
    return kept


def boxes_to_frame(boxes: torch.Tensor, size: tuple[int, int], frame_shape: tuple[int, int]) -> torch.Tensor:
    """x1, y1, x2, y2 at the model input of ``size`` (h, w) back to a frame of ``frame_shape`` (h, w),
    clipped to it."""
    top, left, _, _ = letterbox_window(frame_shape, size)
    gain = min(size[0] / frame_shape[0], size[1] / frame_shape[1])
    scaled = (boxes - torch.tensor([left, top, left, top], dtype=boxes.dtype, device=boxes.device)) / gain
    limits = torch.tensor([frame_shape[1], frame_shape[0]] * 2, dtype=boxes.dtype, device=boxes.device)
    return torch.minimum(scaled.clamp(min=0), limits)


class BatchedTorchDetector:
    """Detects several frames of one size (several cameras) in one call of a PyTorch YOLO model.

    Args:
        model: The ``torch.nn.Module`` (Ultralytics' ``YOLO(...).model``), on ``device``, in eval mode.
        names: Class id to name.
        size: The model input (h, w).
        conf: Confidence threshold.
        iou: NMS IoU threshold.
        class_ids: Classes to keep; None keeps all.
        agnostic: One NMS over all classes.
        half: fp16 (on a GPU).
    """

    def __init__(
        self,
        model: Any,
        names: dict[int, str],
        size: tuple[int, int],
        conf: float,
        iou: float,
        class_ids: Sequence[int] | None = None,
        agnostic: bool = True,
        half: bool = False,
    ) -> None:
        self.model, self.size, self.conf, self.iou = model, size, conf, iou
        self.class_ids, self.agnostic = class_ids, agnostic
        self.device = next(model.parameters()).device
        self.dtype = torch.float16 if half else torch.float32
        self._names = np.array([names[index] for index in range(len(names))])

    @torch.inference_mode()
    def __call__(self, images: Sequence[np.ndarray]) -> list[sv.Detections]:
        """Detect BGR frames of one size; their detections, in order."""
        frames = torch.from_numpy(np.stack(images))
        if self.device.type == "cuda":
            frames = frames.pin_memory().to(self.device, non_blocking=True)
        output = self.model(letterbox_batch(frames, self.size, self.dtype))
        prediction = (output[0] if isinstance(output, list | tuple) else output)[:, : 4 + len(self._names)]
        kept = nms_batch(prediction, self.conf, self.iou, self.class_ids, self.agnostic)
        frame_shape = images[0].shape[:2]
        return [self._detections(rows, frame_shape) for rows in kept]

    def _detections(self, rows: torch.Tensor, frame_shape: tuple[int, int]) -> sv.Detections:
        rows = torch.cat([boxes_to_frame(rows[:, :4], self.size, frame_shape), rows[:, 4:]], dim=1).cpu().numpy()
        class_id = rows[:, 5].astype(int)
        return sv.Detections(
            xyxy=rows[:, :4].astype(np.float32),
            confidence=rows[:, 4].astype(np.float32),
            class_id=class_id,
            data={"class_name": self._names[class_id]},
        )


class TorchBatchRunner:
    """The detector's runner for PyTorch detection weights: each call's frames grouped by size (cameras
    of one size share a call) through :class:`BatchedTorchDetector`, in fp16 on a GPU.

    Args:
        model: The loaded Ultralytics model (``ultralytics.YOLO``); its network is fused (convolution and
            batch norm in one, as Ultralytics' predictor runs it) and moved to ``device``.
        size: The model input (h, w).
        device: ``cpu``, ``cuda:N`` or ``mps``.
        half: fp16 weights and inputs.
        conf: Confidence threshold.
        iou: NMS IoU threshold.
        class_ids: Classes to keep; None keeps all.
        agnostic: One NMS over all classes.
    """

    in_flight = 1
    """The work is done in :meth:`start`, on the detection thread (PyTorch releases the GIL meanwhile)."""
    threads: int | None = None
    """Not set by vpipe (PyTorch's own default)."""

    def __init__(
        self,
        model: Any,
        size: tuple[int, int],
        device: str,
        half: bool,
        conf: float,
        iou: float,
        class_ids: Sequence[int] | None = None,
        agnostic: bool = True,
    ) -> None:
        network = model.model.fuse(verbose=False).to(device).eval()
        network = network.half() if half else network.float()
        self.detector = BatchedTorchDetector(network, model.names, size, conf, iou, class_ids, agnostic, half)

    def start(self, images: list[np.ndarray]) -> PendingDetections:
        """Detect several BGR frames (now), one call per frame size; the returned function gives their
        detections, in the order of ``images``."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(index)
        detections: list[sv.Detections | None] = [None] * len(images)
        for indices in by_shape.values():
            for index, found in zip(indices, self.detector([images[i] for i in indices]), strict=True):
                detections[index] = found
        done = [found for found in detections if found is not None]
        return lambda: done
