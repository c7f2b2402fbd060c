"""Live event streams: every event of ``events.jsonl`` and periodic counts, to MQTT and webhooks.

Each record gets the camera's name and a sequence number (``seq``, from 1 per run), so a receiver can
tell a retry it already has. Sinks never block the run: MQTT publishing is paho's network thread
(QoS 1, messages kept while the broker is away), webhooks a background thread that POSTs from a
bounded queue on disk. An unreachable sink gets one warning line when it goes away and one when it
comes back; the run's files are written whatever happens to the sinks. Each sink counts what it sent,
for the ``publish`` section of ``summary.json``.

- :mod:`~pipeline.io.publish.publisher`: :class:`Publisher`, one source's records to its sinks;
- :mod:`~pipeline.io.publish.mqtt`: :class:`MqttSink` and its credentials;
- :mod:`~pipeline.io.publish.webhook`: :class:`WebhookSink` (redirects never followed, user info as
  Basic authorization);
- :mod:`~pipeline.io.publish.queue`: :class:`DiskQueue`, the webhook's bounded queue on disk.
"""
