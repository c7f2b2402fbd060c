"""``vpipe batch``: recorded video archives processed on Ray, from a laptop to a cluster.

Each video (or, with ``--split``, each time slice of one) is a Ray task running the same pipeline
as ``vpipe run``; a manifest in the output folder makes a batch resumable; the per-video
summaries are merged into ``batch_summary.csv`` and ``batch_summary.json``.

Modules, in the order a batch uses them::

    cli          flags -> BatchRequest; add_batch_parser / command_batch for vpipe's CLI
    job          BatchJob: inputs, manifest, Ray tasks, retries, progress, summaries
    storage      local paths and fsspec URLs: listing inputs, staging files for workers
    manifest     the append-only journal of finished items and slice plans
    slicing      --split: slice boundaries from frame timestamps, probing a video
    scheduler    Ray (imported only here): the session, a task pool with a concurrency cap
    worker       what runs on a worker: one item, or probing a video
    slice_runner one slice through a SourceRun, with an uncounted warm-up
    summaries    slices -> video, videos -> batch_summary.csv / .json

Ray is an optional extra (``pip install 'vpipe[cluster]'``); nothing here imports it at module level.
"""
