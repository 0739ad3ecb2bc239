#!/usr/bin/env python3
"""Development entry point: run the workbench locally, or run the tests.

    python3 dev.py start          # migrate, load the demo, run a worker and the web app
    python3 dev.py test [ARGS]    # python -m pytest ARGS

Only the standard library is imported at the top, so a bare Python 3.11+ can run this:
it creates .venv, installs the project into it (again whenever pyproject.toml changes),
and re-runs itself with the venv's Python before importing anything of the project.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent
VENV = REPO / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
# Touched after a successful install; an older stamp than pyproject.toml means reinstall.
INSTALL_STAMP = VENV / ".dev-installed"
PYPROJECT = REPO / "pyproject.toml"
HOST = "127.0.0.1"
DEFAULT_PORT = 5000
EMBEDDED_REDIS_PORT = 6390
MIN_PYTHON = (3, 11)
STOP_TIMEOUT_SECONDS = 10
STARTUP_TIMEOUT_SECONDS = 60
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """Raised in the main thread when SIGTERM arrives, so cleanup runs as for Ctrl-C."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command and its options. Everything after `test` is passed to pytest untouched."""
    parser = argparse.ArgumentParser(prog="dev.py", description="Review Workbench development.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = commands.add_parser("start", help="run the workbench with demo data")
    start.add_argument("--port", type=int, default=DEFAULT_PORT, help="web port (default 5000)")
    test = commands.add_parser("test", help="run the test suite; extra arguments go to pytest")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest")
    if argv and argv[0] == "test":  # argparse would try to read pytest's options as its own
        return argparse.Namespace(command="test", pytest_args=list(argv[1:]))
    return parser.parse_args(list(argv))


# --- The virtualenv ------------------------------------------------------------------------


def needs_install(pyproject: Path = PYPROJECT, stamp: Path = INSTALL_STAMP) -> bool:
    """True when the project has never been installed in the venv or pyproject.toml changed."""
    return not stamp.exists() or pyproject.stat().st_mtime > stamp.stat().st_mtime


def running_in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv(argv: Sequence[str]) -> None:
    """Create and fill .venv if needed; unless already in it, re-exec this script with it."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"dev.py needs Python {'.'.join(map(str, MIN_PYTHON))}+, this is {sys.version}")
    if not VENV_PYTHON.exists():
        print(f"Creating {VENV.name} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if needs_install():
        print("Installing the project and its dev dependencies into .venv ...", flush=True)
        subprocess.run(
            [str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "-e", ".[dev]"],
            cwd=REPO,
            check=True,
        )
        INSTALL_STAMP.touch()
    if not running_in_venv():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(REPO / "dev.py"), *argv])


# --- Child processes -----------------------------------------------------------------------


class Supervisor:
    """Child processes that live and die together.

    Each child gets its own process group, so stopping it also stops anything it forked
    (an RQ worker's work horse), and a Ctrl-C reaches only us: we stop the children in order.
    """

    def __init__(self, env: dict[str, str] | None = None, cwd: Path = REPO) -> None:
        self.env = env
        self.cwd = cwd
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(list(argv), env=self.env, cwd=self.cwd, start_new_session=True)
        self.children[name] = process
        return process

    def exited(self) -> tuple[str, int] | None:
        """(name, exit code) of a child that has exited, or None while all run."""
        for name, process in self.children.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def wait_for_exit(self, poll_seconds: float = 0.2) -> tuple[str, int]:
        """Block until some child exits; return its name and exit code."""
        while (result := self.exited()) is None:
            time.sleep(poll_seconds)
        return result

    def _signal_all(self, signum: int) -> None:
        for process in self.children.values():
            try:
                os.killpg(process.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass  # the whole group is gone already

    def stop_all(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM every child's group, then SIGKILL what is still there after `timeout`."""
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.children.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._signal_all(signal.SIGKILL)
        for process in self.children.values():
            process.wait()


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if a server could listen on the port now."""
    with socket.socket() as sock:
        # As servers do: connections of a server that just stopped (TIME_WAIT) don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_until_listening(port: int, supervisor: Supervisor, timeout: float) -> bool:
    """True once something accepts connections on the port; False if a child died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and supervisor.exited() is None:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


# --- Commands ------------------------------------------------------------------------------


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


def pytest_command(pytest_args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", *pytest_args]


def _raise_stop(_signum: int, _frame: object) -> None:
    raise StopRequested


def install_stop_handlers() -> None:
    """SIGTERM and SIGINT (Ctrl-C) both stop `start`, cleaned up alike (StopRequested).

    SIGINT is set here too, not left to Python's KeyboardInterrupt: a shell script that
    starts `dev.py start &` in the background leaves SIGINT ignored, and Python then never
    raises KeyboardInterrupt. `kill -INT` to the process group stopped the embedded Redis
    (which sets its own handler) and not dev.py, whose worker then logged a failed Redis
    connection every second."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stop)


def print_banner(port: int) -> None:
    from review.demo_data import DEMO_PASSWORD, DEMO_USERS

    print(f"\nReview Workbench is running at http://{HOST}:{port}/")
    print(f"Demo logins (password {DEMO_PASSWORD!r} unless you changed it):")
    for user in DEMO_USERS:
        print(f"  {user.email:<24} {user.role}")
    print("Press Ctrl-C to stop.\n", flush=True)


def supervise(supervisor: Supervisor, children: dict[str, list[str]], port: int) -> int:
    """Start the children, announce the app once `port` answers, and run until a child
    exits (return 1, having said which) or Ctrl-C/SIGTERM (raised to the caller). Every
    child is stopped on the way out, whatever happened."""
    try:
        for name, argv in children.items():
            supervisor.start(name, argv)
        if wait_until_listening(port, supervisor, STARTUP_TIMEOUT_SECONDS):
            print_banner(port)
        name, code = supervisor.wait_for_exit()
        others = ", ".join(other for other in supervisor.children if other != name)
        print(f"\nThe {name} exited with code {code}; stopping the {others}.", flush=True)
        return 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave children behind;
        # stop_all is bounded by its SIGKILL deadline anyway.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
        try:
            supervisor.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_services(env: dict[str, str], port: int) -> int:
    """Migrate, seed, then run the worker and the web app until one exits or we are stopped."""
    migrate = [sys.executable, "-m", "alembic", "upgrade", "head"]
    subprocess.run(migrate, cwd=REPO, env=env, check=True)
    subprocess.run(flask_command("seed", "demo"), cwd=REPO, env=env, check=True)
    children = {
        "worker": flask_command("worker"),
        "web server": flask_command("run", "--host", HOST, "--port", str(port)),
    }
    return supervise(Supervisor(env), children, port)


def start(port: int) -> int:
    """`dev.py start`: the workbench on http://127.0.0.1:<port>/, with an embedded Redis
    unless REDIS_URL is set. Returns 0 when stopped by Ctrl-C or SIGTERM, 1 on failure."""
    from review.embedded_redis import EmbeddedRedis

    if not port_is_free(port):
        print(
            f"Port {port} is already in use (another `dev.py start`?). Stop that first, "
            f"or pass --port.",
            file=sys.stderr,
        )
        return 1
    env = dict(os.environ)
    # Readable lines in a terminal; production keeps the default JSON Lines.
    env.setdefault("LOG_FORMAT", "text")
    if "DATABASE_URL" not in env:
        (REPO / "instance").mkdir(exist_ok=True)  # the default SQLite file lives there
    install_stop_handlers()
    redis = None
    redis_dir = tempfile.TemporaryDirectory(prefix="workbench-redis-")
    try:
        if not env.get("REDIS_URL"):
            redis_port = EMBEDDED_REDIS_PORT if port_is_free(EMBEDDED_REDIS_PORT) else None
            # Its own session: a Ctrl-C (or a SIGINT to our group) must not take it down
            # before the worker, which talks to it while it shuts down; it is stopped last.
            redis = EmbeddedRedis(
                port=redis_port, data_dir=redis_dir.name, own_session=True
            ).start()
            env["REDIS_URL"] = redis.url
            print(f"Started an embedded Redis at {redis.url}", flush=True)
        return run_services(env, port)
    except (KeyboardInterrupt, StopRequested):
        print("\nStopped.")
        return 0
    except subprocess.CalledProcessError as exc:
        failed = " ".join(exc.cmd[1:])
        print(f"\n`{failed}` failed with exit code {exc.returncode}.", file=sys.stderr)
        return 1
    finally:
        if redis is not None:
            redis.stop()
        redis_dir.cleanup()


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    ensure_venv(argv)
    os.chdir(REPO)
    if args.command == "start":
        return start(args.port)
    # exec, not a subprocess: Ctrl-C then reaches pytest alone and its fixtures clean up.
    command = pytest_command(args.pytest_args)
    os.execv(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
