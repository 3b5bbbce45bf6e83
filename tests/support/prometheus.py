"""A real Prometheus (Debian's `prometheus` package) on loopback for a test: a temporary
config and TSDB directory, a free port in 5420-5439, started and stopped here. The package's
own service is never used (scripts/bootstrap stops and disables it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.http_recorder import free_port
from tests.support.processes import stop_process

PROMETHEUS = "/usr/bin/prometheus"


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    target: str          # HOST:PORT
    token: str = ""      # sent as Authorization: Bearer TOKEN


@dataclass
class Prometheus:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str) -> list[dict[str, object]]:
        """The instant query's result vector: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": promql}))
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def metadata(self, metric: str) -> list[dict[str, str]]:
        """What Prometheus learnt of a metric from the scrapes' HELP and TYPE lines."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/metadata?"
               + urllib.parse.urlencode({"metric": metric}))
        with urllib.request.urlopen(url, timeout=10) as answer:
            return list(json.load(answer)["data"].get(metric, []))

    def values(self, promql: str) -> dict[str, float]:
        """Each series' value by its job label."""
        return {str(r["metric"].get("job")): float(r["value"][1])  # type: ignore[index,union-attr]
                for r in self.query(promql)}

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)


def _config(jobs: list[ScrapeJob]) -> str:
    # JSON is YAML: no YAML library needed to write it.
    return json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": job.name, "metrics_path": "/metrics",
             **({"authorization": {"type": "Bearer", "credentials": job.token}}
                if job.token else {}),
             "static_configs": [{"targets": [job.target]}]} for job in jobs],
    }, indent=2)


def start_prometheus(directory: Path, jobs: list[ScrapeJob]) -> Prometheus:
    if shutil.which(PROMETHEUS) is None:
        raise AssertionError(f"{PROMETHEUS} is missing: apt-get install prometheus "
                             "(scripts/bootstrap's TEST_PACKAGES has it)")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(_config(jobs))
    port = free_port(range(5420, 5440))
    log = directory / "prometheus.log"
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), cwd=directory)
    server = Prometheus(port, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError(f"prometheus did not become ready: {log.read_text()[-2000:]}")
