"""Running a fixed-size OpenVINO export with OpenVINO's own runtime: asynchronous infer requests,
several frames in flight, without Ultralytics' per-call predictor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from pipeline.models.decode import YoloOutputDecoder
from pipeline.models.preprocess import PAD_VALUE, letterbox

PendingDetections = Callable[[], list[sv.Detections]]
"""Detections being computed: calling it waits for them."""


class OpenVINOModelRunner:
    """Runs an OpenVINO export on frames: letterbox, infer, decode (:class:`YoloOutputDecoder`).

    Ultralytics' predictor would do the same steps with a per-call setup and result objects whose
    Python work contends for the GIL with tracking and drawing. The float conversion, BGR to RGB and
    scaling to [0, 1] are compiled into the model (OpenVINO's pre-processing), which does them
    threaded and fused with the first layer instead of as a NumPy blob.

    Args:
        model_dir: The ``*_openvino_model`` folder.
        decoder: Turns the outputs into detections; its ``size`` is the input the model runs at (a
            dynamic-input model is fixed to it).
        pipelined: The caller keeps :attr:`in_flight` frames in flight (:meth:`start`): compile for
            throughput (OpenVINO's streams, each frame on fewer cores) instead of for one frame's
            latency (every core on each frame).
        threads: CPU threads to infer on; 0: every core.
        exact_fp32: Run the float layers in f32 even where OpenVINO's CPU default is bf16 (CPUs with
            AMX or AVX-512 BF16), to compare what a CPU without bf16 computes. Otherwise OpenVINO
            picks, as Ultralytics' own OpenVINO predictor lets it, and :attr:`inference_precision`
            says what it picked.

    Raises:
        ValueError: The model has a fixed input of another size.
    """

    def __init__(
        self,
        model_dir: Path,
        decoder: YoloOutputDecoder,
        pipelined: bool = False,
        threads: int = 0,
        exact_fp32: bool = False,
    ) -> None:
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        size = decoder.size
        core = ov.Core()
        model = core.read_model(str(next(model_dir.glob("*.xml"))))
        shape = model.input().get_partial_shape()
        if shape.is_dynamic:  # e.g. Ultralytics' dynamic exports: fix it to our right-sized input
            model.reshape([1, 3, *size])
        elif list(shape.to_shape()) != [1, 3, *size]:
            raise ValueError(f"{model_dir}: input is {shape}, not [1,3,{size[0]},{size[1]}]")
        steps = PrePostProcessor(model)
        steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
            ColorFormat.BGR
        )
        steps.input().model().set_layout(ov.Layout("NCHW"))
        steps.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT" if pipelined else "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads  # the throughput hint fits its streams to these
        if exact_fp32:
            config["INFERENCE_PRECISION_HINT"] = "f32"
        self._compiled = core.compile_model(steps.build(), "CPU", config)
        self.inference_precision: str = self._compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        """The precision OpenVINO runs the float layers in: ``f32`` or ``bf16`` (``f16`` on some CPUs)."""
        self.threads = int(self._compiled.get_property("INFERENCE_NUM_THREADS"))
        """CPU threads OpenVINO infers on."""
        optimal = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        # At least two, so that one frame is inferred while the last one is decoded.
        self.in_flight = max(2, optimal) if pipelined else 1
        """How many :meth:`start` calls to keep in flight for full throughput."""
        self.decoder = decoder
        self._idle: list[Any] = []  # infer requests, each with its own input and output buffers

    def start(self, images: list[np.ndarray]) -> PendingDetections:
        """Start detecting several BGR frames; the returned function waits for their detections.

        Not thread-safe: start and wait from one thread.
        """
        pending = [self.start_one(image) for image in images]
        return lambda: [finish() for finish in pending]

    def start_one(self, image: np.ndarray) -> Callable[[], sv.Detections]:
        """Start detecting one BGR frame; the returned function waits for its detections."""
        if self._idle:
            request = self._idle.pop()
        else:
            request = self._compiled.create_infer_request()
            request.get_input_tensor().data[:] = PAD_VALUE  # the letterbox border, written once
        letterbox(image, self.decoder.size, request.get_input_tensor().data[0])
        request.start_async()

        def finish() -> sv.Detections:
            request.wait()
            try:
                protos = request.get_output_tensor(1).data[0] if self.decoder.masks else None
                return self.decoder(request.get_output_tensor(0).data, protos, image.shape[:2])
            finally:
                self._idle.append(request)

        return finish
