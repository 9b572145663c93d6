"""A bounded, steady load against one URL, for proving that a disruption
(a rollout, a drain) fails no request."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from platform_api import call


class Load:
    """GET url at `rate` requests per second from a background thread until
    the block ends. Each request opens its own connection, like independent
    clients. A request counts as succeeded only with HTTP 200 and a JSON
    list; anything else (another status, a timeout, a reset) is a failure,
    kept with its time and reason."""

    def __init__(self, base_url: str, path: str, rate: float = 20, timeout: float = 5):
        self.base_url, self.path, self.rate, self.timeout = base_url, path, rate, timeout
        self.sent = self.succeeded = 0
        self.failures: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(4, int(rate * timeout)))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = 0.0

    def _one(self) -> None:
        started = time.monotonic() - self._start
        try:
            status, body = call(self.base_url, "GET", self.path, timeout=self.timeout)
            ok, reason = status == 200 and isinstance(body, list), f"HTTP {status}"
        except Exception as err:  # noqa: BLE001 - every failure is a data point
            ok, reason = False, f"{type(err).__name__}: {err}"
        with self._lock:
            if ok:
                self.succeeded += 1
            else:
                self.failures.append((round(started, 2), reason))

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                self.sent += 1
            self._pool.submit(self._one)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> "Load":
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def summary(self) -> dict:
        return dict(sent=self.sent, succeeded=self.succeeded, failed=len(self.failures),
                    first_failures=self.failures[:10])
