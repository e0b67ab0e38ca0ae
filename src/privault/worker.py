"""The sweep loop that runs inside `privault serve` (and later `privault worker`)."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from privault.logs import run_id
from privault.runtime import Runtime

log = logging.getLogger("privault.worker")


class Worker:
    """Runs each sweep once per ``interval`` seconds on a daemon thread until stopped."""

    def __init__(self, runtime: Runtime, interval: float = 5.0) -> None:
        self.runtime = runtime
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="privault-worker", daemon=True)

    def sweep_once(self) -> int:
        """One pass: the policy version in force followed, requests by mail whose
        confirmation link expired refused, requests carried forward (their mail queued),
        mail sent, and once a day the retention sweep. What it logs carries a run id."""
        with run_id():
            self.runtime.follow_policy()
            with self.runtime.transaction() as session:
                self.runtime.mail_intake(session).expire_unconfirmed()
            self.runtime.rights_engine().run_once()
            sent = self.runtime.mailer().deliver_pending()
            retention = self.runtime.retention_sweep()
            if retention.due():
                retention.run()
            return sent

    def run(self) -> None:
        """Sweep every ``interval`` seconds until ``stop`` (in this thread). First, SQLite's
        WAL is checkpointed: a process killed between an erasure's last step and its own
        checkpoint left the erased rows' old pages there, and nothing else would redo it."""
        try:
            self.runtime.rights_engine().eraser.settle()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("checkpoint at start failed: %s", type(exc).__name__)
        while not self._stop.is_set():
            with run_id():
                try:
                    sent = self.sweep_once()
                except (SQLAlchemyError, OSError) as exc:
                    # A locked or unreachable database: the next round retries; nothing is lost.
                    log.warning("sweep failed: %s", type(exc).__name__)
                else:
                    if sent:
                        log.info("outbox: %d mail(s) sent", sent)
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
