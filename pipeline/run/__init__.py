"""Running the pipeline: :func:`~pipeline.run.runner.run_sources` wires sources, the shared
:class:`~pipeline.models.Detector`, one :class:`~pipeline.run.frame_pipeline.FramePipeline` per
source (the per-frame core) and the run folders' outputs; a batch slice runs through the same
:class:`~pipeline.run.source_run.SourceRun`.

Modules, in the order a run uses them::

    runner          run / run_sources / run_group: the wiring, the loop, the progress bar
    workers         a list's sources spread over worker processes, each running run_group
    opening         sources opened side by side, so a dead camera stalls nothing
    fleet           the run's sources, readers and SourceRuns, added as each one opens; a list's
                    groups, their results and the overview
    detection_stage frames of every source batched into one inference call, on its own thread
    source_run      one source after the model, or one batch slice: core, outputs, intervals, summary.json
    run_writers     a source run's writers: run folder outputs, store sink, plots
    frame_pipeline  the per-frame core: tracker, analytics, heat map, distinct tracks
    summary         RunSummary: summary.json as one type, read by the CLI's table and the batch
"""
