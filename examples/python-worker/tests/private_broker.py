"""A private RabbitMQ for fault tests: its own folder and ports, started with scripts/services/services.sh (as
@cdss/ai-jobs' fault tests do) and stopped for real by its recorded PID. The shared broker is never touched."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from cdss_worker.protocol import _REPO_ROOT

SCRIPT = _REPO_ROOT / "scripts" / "services" / "services.sh"


def _open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivateBroker:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cdss-pyworker-fault-"))
        for _ in range(20):
            # 24000-24497: this worker's range of ports, three in a row (AMQP, epmd, distribution)
            base = 24000 + 3 * random.randrange(166)
            if not any(_open(p) for p in (base, base + 1, base + 2)):
                break
        else:
            raise RuntimeError("no three free ports for a private RabbitMQ")
        self.ports = (base, base + 1, base + 2)
        self.env = {
            **os.environ,
            "CDSS_SERVICES_DIR": str(self.dir),
            "AMQP_PORT": str(base),
            "EPMD_PORT": str(base + 1),
            "RMQ_DIST_PORT": str(base + 2),
            "RMQ_NODENAME": f"pyworker{base}@localhost",
        }
        self.url = f"amqp://ci:ci-pass@127.0.0.1:{base}"

    def start(self) -> None:
        for attempt in range(3):
            done = subprocess.run(["bash", str(SCRIPT), "start", "rabbitmq"], env=self.env, capture_output=True, timeout=180)
            if done.returncode == 0:
                return
            time.sleep(1)
        raise RuntimeError(f"private RabbitMQ did not start: {done.stderr.decode()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM to the broker's recorded PID; returns once it is gone and its ports are closed."""
        pid = int((self.dir / "rabbitmq" / "rabbitmq.pid").read_text().strip())
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            if not alive and not _open(self.ports[0]) and not _open(self.ports[2]):
                return
            time.sleep(0.1)
        raise RuntimeError("private RabbitMQ did not stop")

    def destroy(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", "rabbitmq"], env=self.env, capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
