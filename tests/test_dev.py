"""dev.py: argument parsing, the install stamp, and the child-process supervisor.

The supervisor is exercised with tiny `python -c` children, not the real app.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import dev


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def is_running(pid: int) -> bool:
    """True if the process exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def wait_for_file(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {timeout}s")


# --- arguments -----------------------------------------------------------------------------


def test_test_command_passes_every_argument_to_pytest():
    args = dev.parse_args(["test", "-k", "lease", "-x", "tests/services"])
    assert args.command == "test"
    assert args.pytest_args == ["-k", "lease", "-x", "tests/services"]
    assert dev.pytest_command(args.pytest_args)[-4:] == ["-k", "lease", "-x", "tests/services"]


def test_start_defaults_to_port_5000_and_accepts_another():
    assert dev.parse_args(["start"]).port == 5000
    assert dev.parse_args(["start", "--port", "5055"]).port == 5055


@pytest.mark.parametrize("argv", [[], ["serve"], ["start", "--port", "web"]])
def test_unknown_commands_and_bad_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        dev.parse_args(argv)
    assert exited.value.code == 2
    assert "usage: dev.py" in capsys.readouterr().err


# --- the install stamp ---------------------------------------------------------------------


def test_install_is_needed_until_stamped_and_again_after_pyproject_changes(tmp_path):
    pyproject, stamp = tmp_path / "pyproject.toml", tmp_path / "stamp"
    pyproject.write_text("[project]\n")
    assert dev.needs_install(pyproject, stamp)
    stamp.touch()
    os.utime(pyproject, (time.time() - 60, time.time() - 60))
    assert not dev.needs_install(pyproject, stamp)
    os.utime(pyproject, (time.time() + 60, time.time() + 60))
    assert dev.needs_install(pyproject, stamp)


# --- the supervisor ------------------------------------------------------------------------


def test_when_one_child_dies_the_supervisor_reports_it_and_stops_the_rest(tmp_path):
    supervisor = dev.Supervisor(cwd=tmp_path)
    sleeper = supervisor.start("web server", python("import time; time.sleep(60)"))
    supervisor.start("worker", python("import sys, time; time.sleep(0.3); sys.exit(3)"))

    assert supervisor.wait_for_exit(poll_seconds=0.05) == ("worker", 3)
    assert is_running(sleeper.pid)
    supervisor.stop_all(timeout=5)

    assert sleeper.returncode == -signal.SIGTERM


def test_stopping_a_child_also_stops_what_it_forked(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    spawner = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    supervisor = dev.Supervisor(cwd=tmp_path)
    supervisor.start("worker", python(spawner))
    grandchild = int(wait_for_file(pid_file))

    supervisor.stop_all(timeout=5)

    deadline = time.monotonic() + 5
    while is_running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(grandchild)


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path):
    ready = tmp_path / "ready"
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').write('yes')\n"
        "time.sleep(60)\n"
    )
    supervisor = dev.Supervisor(cwd=tmp_path)
    process = supervisor.start("worker", python(stubborn))
    wait_for_file(ready)

    started = time.monotonic()
    supervisor.stop_all(timeout=0.5)

    assert process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_supervise_announces_the_app_then_stops_everything_when_the_worker_dies(tmp_path, capsys):
    port = free_port()
    web = python(
        "import http.server\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.BaseHTTPRequestHandler)"
        ".serve_forever()\n"
    )
    # The worker outlives the web server's start-up, then fails.
    worker = python("import sys, time; time.sleep(2); sys.exit(4)")
    supervisor = dev.Supervisor(cwd=tmp_path)

    code = dev.supervise(supervisor, {"worker": worker, "web server": web}, port)

    out = capsys.readouterr().out
    assert code == 1
    assert f"running at http://127.0.0.1:{port}/" in out
    assert "reviewer@demo.local" in out
    assert "The worker exited with code 4; stopping the web server." in out
    assert all(process.poll() is not None for process in supervisor.children.values())
    assert dev.port_is_free(port)


# --- ports ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_port_whose_server_just_stopped_counts_as_free():
    # The server closes first, so its side of the connection lingers in TIME_WAIT, as
    # after stopping `dev.py start` with a browser still connected. Like Werkzeug's, the
    # server socket allows address reuse.
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        connection, _ = server.accept()
        connection.close()
    client.close()
    assert dev.port_is_free(port)


def test_start_refuses_a_busy_port_before_starting_anything(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not dev.port_is_free(port)
        assert dev.start(port) == 1
    assert f"Port {port} is already in use" in capsys.readouterr().err
    assert dev.port_is_free(port)


# --- dev.py test, for real -----------------------------------------------------------------


@pytest.mark.skipif(dev.needs_install(), reason="the .venv install stamp is stale or missing")
@pytest.mark.parametrize(("body", "expected"), [("assert True", 0), ("assert False", 1)])
def test_dev_test_returns_pytests_exit_code(tmp_path, body, expected):
    test_file = tmp_path / "test_sample.py"
    test_file.write_text(f"def test_sample():\n    {body}\n")
    result = subprocess.run(
        [
            sys.executable,
            str(dev.REPO / "dev.py"),
            "test",
            "-q",
            "-p",
            "no:cacheprovider",
            str(test_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == expected, result.stdout + result.stderr


# --- stopping ------------------------------------------------------------------------------


def test_sigint_stops_start_even_when_the_shell_left_it_ignored(tmp_path):
    # `dev.py start &` in a script: the shell starts it with SIGINT ignored. A Ctrl-C or
    # `kill -INT` must still stop it, with the same clean-up as SIGTERM.
    script = (
        "import os, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job inherits it\n"
        f"sys.path.insert(0, {str(Path(dev.__file__).parent)!r})\n"
        "import dev\n"
        "dev.install_stop_handlers()\n"
        "for sig in (signal.SIGINT, signal.SIGTERM):\n"
        "    try:\n"
        "        os.kill(os.getpid(), sig)\n"
        "        signal.pause()\n"
        "    except dev.StopRequested:\n"
        "        print('stopped by', sig.name, flush=True)\n"
    )
    done = subprocess.run(python(script), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["stopped by SIGINT", "stopped by SIGTERM"]


def test_the_embedded_redis_outlives_a_ctrl_c_to_its_owners_group():
    # Ctrl-C reaches dev.py's whole process group at once. The embedded Redis used to be in
    # that group and went down first, while the worker, stopped after it, still talked to
    # it: eight tracebacks of "Error 111 connecting" on every stop. It now has a session of
    # its own and dev.py stops it last.
    script = (
        "import signal, sys\n"
        f"sys.path.insert(0, {str(Path(dev.__file__).parent)!r})\n"
        "from review.embedded_redis import EmbeddedRedis\n"
        "server = EmbeddedRedis(own_session=True).start()\n"
        "print(server.port, server.process.pid, flush=True)\n"
        "signal.pause()\n"
    )
    owner = subprocess.Popen(
        python(script), stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    with owner.stdout:
        port, redis_pid = (int(value) for value in owner.stdout.readline().split())
    try:
        os.killpg(owner.pid, signal.SIGINT)
        owner.wait(timeout=10)
        # Redis acts on a SIGINT at its next tick (every 100 ms): give it time to go, if
        # the signal reached it.
        time.sleep(1)
        client = redis.Redis(port=port, socket_timeout=2)
        assert client.ping()
        client.close()
    finally:
        os.kill(redis_pid, signal.SIGTERM)
