"""Watching a run live: the ``--serve`` page (video, counts, health, metrics) and ``--show`` windows.

- :mod:`~pipeline.io.live.view`: ``LiveView``, the web server, and :mod:`~pipeline.io.live.page`, its page;
- :mod:`~pipeline.io.live.latest_frames` and :mod:`~pipeline.io.live.mjpeg`: the newest frame of each
  source and its ``/stream.mjpg`` clients;
- :mod:`~pipeline.io.live.metrics`: ``/metrics`` for Prometheus;
- :mod:`~pipeline.io.live.local_http`: the HTTP server every vpipe page runs on (the editor's too), with
  its guard on the ``Host`` header;
- :mod:`~pipeline.io.live.windows`: desktop windows for ``--show``.
"""
