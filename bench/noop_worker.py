"""The limit of the pipeline benchmark: a Faust agent that does nothing over the same topic.

Run as ``python -m bench.noop_worker TOPIC N OUT``: consumes until N events were seen and
writes the seconds between the first and the N-th event to OUT, then exits.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import faust
from faust import Worker

from stream_jobs.app import CONSUMER_FETCH_BYTES


def main() -> None:
    topic_name, expected, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    app = faust.App(
        f"bench-noop-{os.getpid()}",
        broker=f"kafka://{os.environ['MAYAK_KAFKA_BOOTSTRAP']}",
        store="memory://",
        datadir=str(out.parent / "noop-faust"),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=CONSUMER_FETCH_BYTES,  # as the pipeline's worker fetches
    )
    topic = app.topic(topic_name, value_serializer="raw")

    @app.agent(topic)
    async def noop(stream: faust.StreamT) -> None:
        seen, first = 0, 0.0
        async for _value in stream:
            seen += 1
            if seen == 1:
                first = time.perf_counter()
            if seen == expected:
                out.write_text(f"{time.perf_counter() - first}")
                os.kill(os.getpid(), 15)  # SIGTERM: let the worker shut down cleanly

    # same Faust worker configuration as the pipeline's (stream_jobs.worker.quiet_worker): the
    # spinner would set the root logger to DEBUG and slow the baseline down, not Faust
    worker = Worker(app, loglevel="warn", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
