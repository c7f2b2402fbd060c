"""A YOLO11 model's raw outputs to a frame's ``sv.Detections``: NMS, boxes scaled back to the frame,
and for a segmentation model its masks, with Ultralytics' own functions, so the detections are
those of its predictor."""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from pipeline.models.preprocess import letterbox_window


class YoloOutputDecoder:
    """Turns one frame's raw model outputs into its detections.

    Masks are cropped to the letterbox's content and resized to the frame, as
    ``sv.Detections.from_ultralytics`` does.

    Args:
        size: The model input (height, width).
        names: Class id to name.
        conf: Confidence threshold.
        iou: NMS IoU threshold.
        class_ids: Classes to keep; None keeps all.
        agnostic: One NMS over all classes (else per class).
        masks: The model is a segmentation model (a second output: the mask prototypes).
    """

    def __init__(
        self,
        size: tuple[int, int],
        names: dict[int, str],
        conf: float,
        iou: float,
        class_ids: list[int] | None,
        agnostic: bool = True,
        masks: bool = False,
    ) -> None:
        self.size = size
        self._names = np.array([names[index] for index in range(len(names))])
        self.conf, self.iou, self.class_ids, self.agnostic = conf, iou, class_ids, agnostic
        self.masks = masks

    def __call__(
        self, prediction: np.ndarray, protos: np.ndarray | None, frame_shape: tuple[int, int]
    ) -> sv.Detections:
        """The model's raw outputs to the frame's detections.

        Args:
            prediction: (1, 4 + classes + mask coefficients, anchors): boxes (centre, size) and class
                scores at the model input.
            protos: (32, h, w) mask prototypes of a segmentation model; None for detection.
            frame_shape: The frame's (height, width).
        """
        import torch
        from ultralytics.utils.nms import non_max_suppression
        from ultralytics.utils.ops import process_mask, scale_boxes

        classes = len(self._names)
        # NMS's own first step (best class score over the threshold), done here in NumPy so that
        # torch only sees (and we only copy out of the request) the few candidates, not every anchor.
        candidates = prediction[0, 4 : 4 + classes, :].max(axis=0) > self.conf
        if candidates.sum() == 6:
            # Ultralytics' NMS reads a last dimension of 6 as an end-to-end model's (boxes, 6) output
            # and would return garbage; one more anchor, under the threshold, is dropped by NMS itself.
            candidates[np.flatnonzero(~candidates)[0]] = True
        kept = non_max_suppression(
            torch.from_numpy(prediction[:, :, candidates]),
            self.conf,
            self.iou,
            self.class_ids,
            agnostic=self.agnostic,
            nc=classes,
        )[0]
        masks = None
        if protos is not None:
            input_masks = process_mask(torch.from_numpy(protos), kept[:, 6:], kept[:, :4], self.size, upsample=True)
            has_pixels = input_masks.amax((-2, -1)) > 0
            kept, input_masks = kept[has_pixels], input_masks[has_pixels]
            masks = self._frame_masks(input_masks.numpy(), frame_shape)
        boxes = scale_boxes(self.size, kept[:, :4], frame_shape).numpy()
        class_id = kept[:, 5].numpy().astype(int)
        return sv.Detections(
            xyxy=boxes.astype(np.float32),
            mask=masks,
            confidence=kept[:, 4].numpy().astype(np.float32),
            class_id=class_id,
            data={"class_name": self._names[class_id]},
        )

    def _frame_masks(self, input_masks: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
        """(n, H, W) 0/1 masks at the model input to boolean masks of the frame: the letterbox's
        border cropped, then resized (all masks in one call, as channels of one image)."""
        height, width = frame_shape
        if not len(input_masks):
            return np.zeros((0, height, width), bool)
        top, left, content_height, content_width = letterbox_window(frame_shape, self.size)
        channels = np.ascontiguousarray(
            input_masks[:, top : top + content_height, left : left + content_width].transpose(1, 2, 0)
        )
        resized = cv2.resize(channels, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, -1)
        return resized.transpose(2, 0, 1) > 0
