"""``python -m stream_jobs``: the stream worker alone (same as ``mayak worker --no-dashboards``)."""

from mayak.settings import Settings
from stream_jobs.worker import run_worker

if __name__ == "__main__":
    run_worker(Settings(), dashboards=None)
