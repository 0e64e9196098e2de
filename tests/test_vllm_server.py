"""The vLLM launcher's own logic, without vLLM: arguments, environment, and how start-up fails.

A shell script stands in for the vLLM venv's python here only to make start-up fail on purpose
(exit at once, or never answer); tests/test_vllm.py runs the real server.
"""

import os
import socket
import stat
import time
from pathlib import Path

import pytest

from personaguard.errors import PersonaguardError
from personaguard.models.bundled import materialise
from personaguard.models.spec import parse_spec
from personaguard.models.vllm_server import VLLMServer, free_port, server_env


def fake_python(tmp_path, body: str):
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture(scope="module")
def model_dir():
    return materialise()


def test_missing_vllm_venv_says_how_to_build_it(model_dir, tmp_path):
    with pytest.raises(PersonaguardError, match=r"no vLLM python at .*make vllm"):
        VLLMServer(model_dir, python=tmp_path / "nope" / "python")


def test_listens_on_loopback_only_and_its_spec_parses(model_dir, tmp_path):
    server = VLLMServer(model_dir, python=fake_python(tmp_path, "exit 0"), port=8123)
    cmd = server.command()
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd.count("--host") == 1
    assert cmd[cmd.index("--dtype") + 1] == "float32"  # personaguard's default, so scores match the HF engine
    spec = parse_spec(server.spec(max_connections=8))
    assert spec.base_url == "http://127.0.0.1:8123/v1" and spec.name == "smollm2-135m"
    assert spec.option("tokenizer") == str(model_dir) and spec.option("max_connections") == "8"


def test_threads_bind_that_many_allowed_cpus():
    cpus = sorted(os.sched_getaffinity(0))
    assert server_env(1, 2)["VLLM_CPU_OMP_THREADS_BIND"] == str(cpus[0])
    assert "VLLM_CPU_OMP_THREADS_BIND" not in server_env(None, 2)  # vLLM's own choice
    assert server_env(None, 2)["VLLM_CPU_KVCACHE_SPACE"] == "2"
    with pytest.raises(PersonaguardError, match="threads=999"):
        server_env(999, 2)


def test_a_server_that_dies_at_start_up_is_one_clear_error(model_dir, tmp_path):
    python = fake_python(tmp_path, 'echo "ValueError: no such model architecture"; exit 1')
    server = VLLMServer(model_dir, python=python, log=tmp_path / "server.log")
    with pytest.raises(PersonaguardError, match="exited during start-up.*no such model architecture"):
        server.start(timeout=30)
    assert not server.running


def test_a_server_that_never_answers_times_out_and_its_whole_group_is_stopped(model_dir, tmp_path):
    pid_file = tmp_path / "child.pid"
    python = fake_python(tmp_path, f"sleep 600 & echo $! > {pid_file}; echo compiling; wait")
    server = VLLMServer(model_dir, python=python, log=tmp_path / "server.log")
    with pytest.raises(PersonaguardError, match=r"did not answer within 2 s.*compiling"):
        server.start(timeout=2)
    stat_file = Path(f"/proc/{pid_file.read_text().strip()}/stat")
    for _ in range(50):  # the child (an engine process, for vLLM) is gone with the group, or a zombie
        if not stat_file.exists() or stat_file.read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail("the server's child process outlived stop()")
    assert not server.running


def test_a_busy_port_is_refused_before_launching(model_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        server = VLLMServer(model_dir, python=fake_python(tmp_path, "exit 0"), port=s.getsockname()[1])
        with pytest.raises(PersonaguardError, match="already in use"):
            server.start(timeout=5)


def test_serve_command_mistakes_are_one_line(tmp_path):
    from tests.test_cli import assert_one_line_error, run_cli

    missing = run_cli("serve", "bundled:smollm2-135m", "--python", str(tmp_path / "none" / "python"))
    assert_one_line_error(missing, "no vLLM python at", "make vllm")
    dies = fake_python(tmp_path, 'echo "first line"; echo "RuntimeError: out of memory"; exit 1')
    proc = run_cli("serve", "bundled:smollm2-135m", "--python", str(dies), "--port", str(free_port()))
    assert_one_line_error(proc, "exited during start-up", "RuntimeError: out of memory")
