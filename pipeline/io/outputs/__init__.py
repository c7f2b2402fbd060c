"""What a run writes into its folder, crash-safe as it goes.

- :mod:`~pipeline.io.outputs.run_outputs`: the files of one run folder, fed a frame at a time;
- :mod:`~pipeline.io.outputs.sinks`: the annotated video, ``counts.csv``, ``events.jsonl``, JSON files;
- :mod:`~pipeline.io.outputs.intervals_file`: ``intervals.csv``, counts per time bin;
- :mod:`~pipeline.io.outputs.folders`: one folder, one run: checked before the model loads;
- :mod:`~pipeline.io.outputs.plots`: ``counts.png``, ``heatmap.png``, ``movements.png``.
"""
