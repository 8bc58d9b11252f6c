"""Start to ready: seconds from starting ``loyalty serve`` until ``GET /readyz`` answers 200.

    LOYALTY_HOME=/tmp/srvhome python serving/startup_time.py --engine uvicorn --workers 2

Runs the command, polls /readyz every 50 ms, prints the seconds, stops the server (its process
group). Not a benchmark of throughput: only start-up.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="uvicorn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=3917)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    loyalty = os.path.join(os.path.dirname(sys.executable), "loyalty")
    cmd = [loyalty, "serve", "--engine", args.engine, "--workers", str(args.workers)]
    cmd += ["--port", str(args.port)]
    url = f"http://127.0.0.1:{args.port}/readyz"
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
    ready = None
    last = ""
    try:
        while time.perf_counter() - started < args.timeout and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        ready = time.perf_counter() - started
                        break
            except urllib.error.HTTPError as exc:
                last = exc.read().decode()[:400]
            except OSError:
                pass
            time.sleep(0.05)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # the server exited by itself (reported below)
            pass
    load = os.getloadavg()
    if ready is None:
        print(f"{args.engine}: not ready after {args.timeout} s; last /readyz: {last}")
        sys.exit(1)
    print(
        f"{args.engine} workers={args.workers}: start to ready {ready:.1f} s (load {load[0]:.2f})"
    )


if __name__ == "__main__":
    main()
