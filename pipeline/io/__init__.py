"""Everything that crosses the process's edge, by concern: :mod:`~pipeline.io.sources` (frames in),
:mod:`~pipeline.io.outputs` (the run folder), :mod:`~pipeline.io.publish` (MQTT and webhooks),
:mod:`~pipeline.io.live` (the ``--serve`` page and ``--show`` windows), :mod:`~pipeline.io.urls`
(stream names and credentials masked) and :mod:`~pipeline.io.slot_formats` (other tools' slot files)."""
