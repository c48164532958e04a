"""Launching ranks: local spawn supervised by a writer parent, or torchrun with rank 0 writing.

Spawn: the parent never joins the process group; ranks stream points over one pipe each; the parent
watches for progress (``--timeout`` seconds without any rank finishing a case ends the run), for rank
exits and for Ctrl-C/SIGTERM, and kills every rank on failure. Torchrun: every rank runs a watchdog
thread that owns SIGINT/SIGTERM (blocked in the main thread, so a rank stuck inside a C call still
reacts) and the progress timeout; rank 0 finishes the run files before exiting.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import protocol
from bench.plan import RunConfig
from bench.ports import free_port, port_in_use
from bench.records import Measurement
from bench.run_writer import RunWriter, base_metadata

#: how much longer than --timeout a watchdog waits before it gives up by itself: the local supervisor (so the
#: process group's own timeout, at --timeout, reports first and names the rank) and, under torchrun, every rank
#: other than the writer (so the writer records the timeout before the agent tears it down)
WATCHDOG_GRACE_S = 5.0


@dataclass
class Outcome:
    """How the run ended: status per the schema, a reason when not complete."""

    status: str
    reason: str | None = None
    skipped: list[str] = field(default_factory=list)
    port_busy: bool = False  # the rendezvous port was taken: a spawn run may retry on another port


class Sink:
    """Receives what rank 0 emits: points (to writer, table, progress bar), skips, rank metadata."""

    def __init__(self, writer: RunWriter, on_point: Callable[[Measurement], None], warn: Callable[[str], None],
                 on_progress: Callable[[int], None] | None = None) -> None:  # fmt: skip
        self.writer = writer
        self.on_point = on_point
        self.warn = warn
        self.on_progress = on_progress
        self.skipped: list[str] = []

    def handle(self, kind: str, payload: Any) -> None:
        if kind == protocol.POINT:
            m = Measurement.from_message(payload)
            self.writer.add(m)
            self.on_point(m)
        elif kind == protocol.SKIP:
            msg = f"{payload['label']}: skipped, algorithm rejected the case ({payload['reason']})"
            self.skipped.append(msg)
            self.writer.warn(msg)
            self.warn(msg)
        elif kind == protocol.META:
            self.writer.set_rank_meta(payload)
        elif kind == protocol.TICK and payload and self.on_progress is not None:
            self.on_progress(payload)


class ResultSink(Sink):
    """A Sink for the commands whose rank 0 emits one RESULT (pairs, hunt, scale): keeps it in ``result`` and prints
    warnings to stderr; their run directories hold no points."""

    def __init__(self, writer: RunWriter) -> None:
        super().__init__(writer, lambda m: None, lambda msg: print(f"collbench: warning: {msg}", file=sys.stderr))
        self.result: dict[str, Any] = {}

    @classmethod
    def for_run(cls, run_dir: Path, argv: list[str], env: dict[str, int] | None, config: dict[str, Any]) -> ResultSink:
        """The sink of a new run directory written by ``collbench <argv>`` (spawned, or torchrun when ``env``)."""
        meta = base_metadata(run_dir, ["collbench", *argv], "torchrun" if env else "spawn", config)
        return cls(RunWriter(run_dir, meta))

    def handle(self, kind: str, payload: Any) -> None:
        if kind == protocol.RESULT:
            self.result.update(payload)
        else:
            super().handle(kind, payload)

    def launch(
        self, config: RunConfig, plan: Any, world: int, env: dict[str, int] | None, rank_main: Callable
    ) -> tuple[Outcome, float]:
        """Run ``rank_main`` on spawned ranks (``env`` None) or as torchrun's rank 0; the outcome and the wall time.

        A harness bug becomes a "failed" outcome (the run directory still gets its status), and a run that ended
        cleanly without rank 0's RESULT is "incomplete"."""
        t0 = time.monotonic()
        try:
            if env is None:
                outcome = run_spawned(config, plan, world, self, rank_main)
            else:
                outcome = run_torchrun(config, plan, self, env, rank_main)
        except Exception as exc:  # noqa: BLE001 - never lose the file status to a harness bug
            outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
        wall_s = time.monotonic() - t0
        if outcome.status == "complete" and not self.result:
            outcome = Outcome("incomplete", "rank 0 sent no result")
        return outcome, wall_s


PORT_ATTEMPTS = 3  # a free port can be taken by another process before rank 0 listens on it


class _Terminated(Exception):
    pass


def _spawn_port(attempt: int) -> int:
    """The rendezvous port: a free one; tests may force a busy one for the first attempt."""
    from bench import faults

    forced = faults.forced_port() if attempt == 0 else None
    return forced if forced is not None else free_port()


def run_spawned(config: RunConfig, plan: Any, nprocs: int, sink: Sink, rank_main: Callable | None = None) -> Outcome:
    """Spawn ``nprocs`` local ranks and supervise them; retry on a new port when the port was taken.

    ``rank_main(config, plan, emit)`` is what each rank runs once its group is up (default: ``collbench
    run``'s ``worker.run_rank`` over a list of CaseSpec; ``collbench pairs`` passes its own)."""
    for attempt in range(PORT_ATTEMPTS):
        port = _spawn_port(attempt)
        outcome = _run_spawned_once(config, plan, nprocs, sink, port, rank_main)
        if not outcome.port_busy or attempt + 1 == PORT_ATTEMPTS or sink.writer.n_points:
            return outcome
        sink.warn(f"port {port} was taken before rank 0 could listen on it; retrying on another port")
    raise AssertionError("unreachable")


#: what the fork server imports once (torch and torch.distributed among it), so that no rank imports it again
FORKSERVER_PRELOAD = ["bench.timing", "bench.osu_p2p", "bench.worker"]


def rank_context() -> tuple[Any, int]:
    """(multiprocessing context, the pid every rank's parent has) for starting local ranks.

    Linux: ``forkserver``. Its one server process imports torch once (FORKSERVER_PRELOAD; it never touches CUDA)
    and forks every rank from itself, so a rank starts in a fraction of a second instead of importing torch again
    (about 3 s of CPU per rank: 8 ranks on 2 cores spent some 20 s on it). The server ends when this process
    does, and each rank dies with the server (PR_SET_PDEATHSIG), so no rank outlives the supervisor. Elsewhere,
    or when the server's pid cannot be read, ``spawn`` (each rank a fresh interpreter, the supervisor its parent).
    """
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        forkserver.ensure_running()
        pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
        if isinstance(pid, int) and pid > 0:
            return ctx, pid
    return mp.get_context("spawn"), os.getpid()


def _run_spawned_once(
    config: RunConfig, plan: Any, nprocs: int, sink: Sink, port: int, rank_main: Callable | None = None
) -> Outcome:
    """Spawn ``nprocs`` local ranks, supervise them, feed ``sink``; always leaves no rank running."""
    from bench import worker

    ctx, rank_parent = rank_context()
    procs, conns = [], []
    old_term = signal.signal(signal.SIGTERM, _raise_terminated)
    old_int = signal.signal(signal.SIGINT, _raise_interrupted)  # even if the shell ignored it
    try:
        for rank in range(nprocs):
            reader, writer_end = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=worker.spawn_entry,
                args=(rank, nprocs, port, config, plan, writer_end, rank_parent, rank_main, os.getpid(),
                      dict(os.environ)),
                name=f"collbench-rank{rank}",
                daemon=True,
            )
            proc.start()
            writer_end.close()
            procs.append(proc)
            conns.append(reader)
        return _supervise(config, procs, conns, sink)
    except (KeyboardInterrupt, _Terminated) as exc:  # the handlers already ignore any further signal
        what = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        return Outcome("incomplete", what, sink.skipped)
    finally:
        _kill_all(procs)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)


def _raise_interrupted(signum: int, frame: object) -> None:
    _ignore_stop_signals()
    raise KeyboardInterrupt


def _raise_terminated(signum: int, frame: object) -> None:
    _ignore_stop_signals()
    raise _Terminated()


def _ignore_stop_signals() -> None:
    """After the first SIGINT/SIGTERM, further ones are ignored: one outcome, one line, the files finished."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _kill_all(procs: list) -> None:
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    for proc in procs:
        proc.join(timeout=10)


def _supervise(config: RunConfig, procs: list, conns: list, sink: Sink) -> Outcome:
    from multiprocessing.connection import wait

    rank_of = {id(c): r for r, c in enumerate(conns)}
    open_conns = list(conns)
    done: set[int] = set()
    errors: dict[int, str] = {}
    last_progress = time.monotonic()
    failed_at: float | None = None
    # the process group's own timeout (--timeout) fires first and names the rank and the call that waited;
    # the supervisor waits WATCHDOG_GRACE_S longer, for hangs the backend cannot see (a rank stuck in Python)
    limit_s = config.timeout_s + WATCHDOG_GRACE_S
    while True:
        ready = wait(open_conns, timeout=0.2) if open_conns else []
        for conn in ready:
            rank = rank_of[id(conn)]
            try:
                kind, _, payload = conn.recv()
            except (EOFError, OSError):
                open_conns.remove(conn)
                continue
            last_progress = time.monotonic()
            if kind == protocol.DONE:
                done.add(rank)
            elif kind == protocol.ERROR:
                errors[rank] = payload
                failed_at = failed_at or time.monotonic()
            elif rank == 0:
                sink.handle(kind, payload)
        if len(done) == len(procs):
            for proc in procs:
                proc.join(timeout=10)
            bad = [f"rank {r} exited with code {p.exitcode}" for r, p in enumerate(procs) if p.exitcode]
            return (
                Outcome("incomplete", "; ".join(bad), sink.skipped) if bad else Outcome("complete", None, sink.skipped)
            )
        exits = _exits(procs, conns, open_conns, done)
        if exits and failed_at is None:
            failed_at = time.monotonic()
        now = time.monotonic()
        if failed_at is not None and (now - failed_at > 1.0 or not open_conns):
            # a rank that crashed may not have its exit code yet (ranks from the fork server report it through
            # the server): wait up to a second for them, so the reason names the crash, not its echo elsewhere
            deadline = now + 1.0
            for proc in procs:
                if proc.exitcode is None and not open_conns:
                    proc.join(timeout=max(0.0, deadline - time.monotonic()))
            exits = _exits(procs, conns, open_conns, done)
            return _failure_outcome(config, exits, errors, sink.skipped)
        if now - last_progress > limit_s:
            alive = [r for r, p in enumerate(procs) if p.is_alive()]
            reason = f"timeout: no rank finished a case for {limit_s:g} s (ranks still running: {alive})"
            return Outcome("incomplete", reason, sink.skipped)


def _exits(procs: list, conns: list, open_conns: list, done: set[int]) -> dict[int, int]:
    """Exit codes of the ranks that ended badly (non-zero, or 0 without saying done) and whose every message
    has been read: a rank may exit while the supervisor is still behind on its pipe (a burst of points at the
    end of a block), and those points are not lost, nor is its done mistaken for a crash."""
    exits = {}
    for r, p in enumerate(procs):
        code = p.exitcode
        if code is None or (code == 0 and r in done):
            continue
        if conns[r] in open_conns and conns[r].poll():
            continue  # messages still waiting: read them first
        exits[r] = code
    return exits


def _failure_outcome(config: RunConfig, exits: dict[int, int | None], errors: dict[int, str], skipped) -> Outcome:
    """``failed`` when the process group never came up (backend init, busy port), else ``incomplete``."""
    prefix = protocol.INIT_ERROR_PREFIX
    init = {r: m[len(prefix) :] for r, m in errors.items() if m.startswith(prefix)}
    if not init:
        return Outcome("incomplete", _failure_reason(exits, errors), skipped)
    busy = any(port_in_use(m) for m in init.values())
    what = "the rendezvous port is already in use" if busy else f"backend {config.backend} failed to initialise"
    detail = "; ".join(f"rank {r}: {m}" for r, m in sorted(init.items()))
    return Outcome("failed", f"{what} ({detail})", skipped, port_busy=busy)


def _failure_reason(exits: dict[int, int | None], errors: dict[int, str]) -> str:
    """Exit codes first (the root cause of a crash), then the errors other ranks saw."""
    parts = [f"rank {r} exited with code {code}" for r, code in sorted(exits.items()) if r not in errors]
    parts += [f"rank {r}: {msg}" for r, msg in sorted(errors.items())]
    return "; ".join(parts) or "a rank failed"


def torchrun_env() -> dict[str, int] | None:
    """Ranks given by a launcher (torchrun/torch.distributed.run): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR."""
    env = os.environ
    if not all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR")):
        return None
    rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    local_rank = int(env.get("LOCAL_RANK", "0"))
    local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    out = {"rank": rank, "world_size": world, "local_rank": local_rank, "local_world_size": local_world}
    if env.get("GROUP_WORLD_SIZE", "").isdigit():  # torchrun: the number of agents (nodes)
        out["group_world_size"] = int(env["GROUP_WORLD_SIZE"])
    return out


class Heartbeats:
    """Under torchrun, each rank's watchdog posts (wall time, seconds since its last progress, host) to the job's
    store about once a second, so that rank 0, on a timeout, can name the ranks that stopped answering (no beat
    for a while: their node or its link is gone) or that stopped progressing. Best effort: any store error turns
    the beats off and changes nothing else."""

    PERIOD_S = 1.0

    def __init__(self, env: dict[str, int], timeout_s: float) -> None:
        self.rank, self.world = env["rank"], env["world_size"]
        self.host = socket.gethostname()
        self.timeout_s = timeout_s
        self.store: Any = None
        self.next_beat = 0.0

    def connect(self) -> None:
        """Join the job's store (after the process group came up, so the store is known to answer); only under
        torchrun's agent, whose store outlives any one rank."""
        if "TORCHELASTIC_RUN_ID" not in os.environ:
            return
        try:
            from datetime import timedelta

            import torch.distributed as dist

            self.store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                       timeout=timedelta(seconds=2), wait_for_workers=False)  # fmt: skip
        except Exception:  # noqa: BLE001 - no heartbeats then, the run goes on
            self.store = None

    def beat(self, last_progress: float) -> None:
        now = time.monotonic()
        if self.store is None or now < self.next_beat:
            return
        self.next_beat = now + self.PERIOD_S
        try:
            self.store.set(f"collbench/beat/{self.rank}", f"{time.time():.3f} {now - last_progress:.3f} {self.host}")
        except Exception:  # noqa: BLE001
            self.store = None

    def culprits(self) -> str:
        """'; rank 3 (host node1) stopped answering 9 s ago' and the like, or '' when nothing can be said."""
        if self.store is None:
            return ""
        silent, stuck = [], []
        now = time.time()
        try:
            for r in range(self.world):
                key = f"collbench/beat/{r}"
                if not self.store.check([key]):
                    silent.append(f"rank {r} (never reported)")
                    continue
                wall, idle, host = self.store.get(key).decode().split(" ", 2)
                age = now - float(wall)
                if age > max(3 * self.PERIOD_S, 3.0):
                    silent.append(f"rank {r} (host {host}) {age:.0f} s ago")
                elif float(idle) > self.timeout_s / 2 and r != self.rank:
                    stuck.append(f"rank {r} (host {host})")
        except Exception:  # noqa: BLE001
            return ""
        parts = []
        if silent:
            parts.append("stopped answering: " + ", ".join(silent))
        if stuck and not silent:
            parts.append("alive but not progressing: " + ", ".join(stuck))
        return ("; " + "; ".join(parts)) if parts else ""


def run_torchrun(
    config: RunConfig, plan: Any, sink: Sink | None, env: dict[str, int], rank_main: Callable | None = None
) -> Outcome:
    """This process is one launcher rank; rank 0 (``sink`` not None) writes. Returns this rank's outcome."""
    from datetime import timedelta

    import torch.distributed as dist

    from bench import worker

    state = {"last": time.monotonic()}
    # the writer (rank 0) gives up first and records the timeout; another rank that gave up first would make the
    # agent SIGTERM rank 0, and the run would read "terminated" instead of "timeout" (a race of 0.5 s checks)
    limit_s = config.timeout_s if sink is not None else config.timeout_s + WATCHDOG_GRACE_S
    stop = threading.Event()
    lock = threading.Lock()

    def finish_and_exit(status: str, reason: str, code: int) -> None:
        with lock:
            if sink is not None:
                sink.writer.finish(status, reason)
            os._exit(code)

    beats = Heartbeats(env, config.timeout_s)

    def watchdog() -> None:
        while not stop.is_set():
            sig = signal.sigtimedwait([signal.SIGINT, signal.SIGTERM], 0.5)
            if stop.is_set():
                return
            if sig is not None:
                name = "interrupted (Ctrl-C)" if sig.si_signo == signal.SIGINT else "terminated (SIGTERM)"
                finish_and_exit("incomplete", f"rank {env['rank']} {name}", 128 + sig.si_signo)
            beats.beat(state["last"])
            if time.monotonic() - state["last"] > limit_s:
                who = beats.culprits() if sink is not None else ""
                finish_and_exit("incomplete", f"timeout: no progress for {config.timeout_s:g} s{who}", 1)

    parent = os.getppid()
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT, signal.SIGTERM])
    thread = threading.Thread(target=watchdog, name="collbench-watchdog", daemon=True)
    thread.start()
    if "TORCHELASTIC_RUN_ID" in os.environ:
        # a SIGKILLed torchrun agent cannot stop its ranks: SIGTERM them, so the watchdog ends the run cleanly
        worker.set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    def emit(kind: str, payload: Any) -> None:
        state["last"] = time.monotonic()
        if sink is not None:
            with lock:
                sink.handle(kind, payload)

    try:
        if config.device == "cuda":
            import torch

            torch.cuda.set_device(env["local_rank"])
        try:
            dist.init_process_group(config.backend, timeout=timedelta(seconds=config.timeout_s))
        except Exception as exc:  # noqa: BLE001 - one clear line, not a traceback
            msg = worker.short_error(exc)
            if port_in_use(msg):
                what = f"MASTER_PORT {os.environ.get('MASTER_PORT')} is already in use; choose a free port"
            else:
                what = f"backend {config.backend} failed to initialise"
            return Outcome("failed", f"rank {env['rank']}: {what} ({msg})", sink.skipped if sink else [])
        beats.connect()
        (rank_main or worker.run_rank)(config, plan, emit)
        dist.destroy_process_group()
    except Exception as exc:  # noqa: BLE001 - a peer died or the algorithm failed: keep the points
        msg = f"rank {env['rank']}: {worker.short_error(exc)}"
        return Outcome("incomplete", msg, sink.skipped if sink else [])
    finally:
        stop.set()
    return Outcome("complete", None, sink.skipped if sink else [])
