"""Where frames come from: files, image folders and live feeds, all as :class:`~pipeline.io.sources.frames.Frame`.

- :mod:`~pipeline.io.sources.frames`: ``Frame`` and ``FrameSource``, what every source provides;
- :mod:`~pipeline.io.sources.files`: video files and image folders, and ``open_source`` for any spec;
- :mod:`~pipeline.io.sources.live`: network streams and webcams that may drop and come back;
- :mod:`~pipeline.io.sources.snapshot_times`: capture times of snapshot images.
"""
