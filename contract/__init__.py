"""The raw-event contract: what producers put on ``mayak.raw`` and the stream jobs read.

Shared by both sides, so it depends on neither: the versioned schema (``schema``), the
frames several events travel in (``raw_frames``), the seal their messages travel under
(``raw_seal``) and the keys both sides derive from one master secret (``crypto``: the IP
cipher, the Kafka partition key).
"""
