"""The ray executor: the units as Ray tasks on a local Ray instance or a cluster, with the output
folder on storage every node shares (checked before the first unit), nodes lost mid-run turned
into failed units, and cancelling on a stop."""
from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .base import ExecutorError, Lost, NodeLost, T
from .signals import keep_handlers


RAY_INSTALL_HINT = 'pip install -e ".[ray]"'


PROBE_TIMEOUT_S = 120.0


def import_ray():
    try:
        # lazy: optional dependency (the ray extra)
        import ray
    except ImportError as exc:
        raise ExecutorError(f"executor kind 'ray' needs Ray, which is not installed here: "
                            f"{RAY_INSTALL_HINT} (or pip install ray)") from exc
    return ray


def _enter(cwd: str) -> None:
    """Run in the driver's working directory when this node has it, so relative paths of the
    config (output, sources, detect.weights) mean what they mean on the driver."""
    try:
        if cwd and os.getcwd() != cwd and os.path.isdir(cwd):
            os.chdir(cwd)
    except OSError:
        pass


def _run_unit(cwd: str, shared: tuple, item: Any) -> Any:
    """The Ray task: ``fn(item, *common)`` in the driver's working directory."""
    fn, common = shared
    _enter(cwd)
    return fn(item, *common)


def _call_in(cwd: str, fn: Callable[..., T], *args: Any) -> T:
    """A Ray task: ``fn(*args)`` in the driver's working directory."""
    _enter(cwd)
    return fn(*args)


def _probe(root: str, theirs: str, mine: str, token: str) -> dict[str, Any]:
    """On a worker: read the driver's probe file, then write ours for the driver to read."""
    state = Path(root) / "state"
    try:
        seen = (state / theirs).read_text(encoding="utf-8")
        error = None if seen == token else f"found {state / theirs} with other content"
    except OSError as exc:
        error = f"cannot read {state / theirs}, which the driver wrote ({exc.strerror or exc})"
    if error is None:
        try:
            (state / mine).write_text(token, encoding="utf-8")
        except OSError as exc:
            error = f"cannot write {state / mine} ({exc.strerror or exc})"
    return {"host": socket.gethostname(), "error": error, "path": str(Path(root).resolve())}


class RayExecutor:
    """Units as Ray tasks. ``address`` omitted: ``RAY_ADDRESS`` when set, else a new local Ray
    instance for this run; ``auto``: the cluster started on this machine with ``ray start``;
    ``host:port``: the cluster whose head node is there.

    Ray's ``max_retries`` reruns a task whose worker process or node died (system failures);
    exceptions of the unit are not retried by Ray (``retry_exceptions=False``): a unit records
    its own failures in the markers, which ``--retry-failed`` retries.
    """

    kind = "ray"
    inline = False

    def __init__(self, settings: Any, root: Path, log: Callable[[str], None] = print):
        self.settings = settings
        self.root = Path(root)
        self.log = log
        self.ray: Any = None
        self._owned = False
        self._pending: dict[Any, Any] = {}
        self._node_lost = False  # the local raylet died: Ray can be asked nothing more

    # --- lifecycle

    def __enter__(self) -> RayExecutor:
        self.ray = import_ray()
        try:
            if not self.ray.is_initialized():
                self._connect()
            nodes = self._check_shared_output()
        except BaseException:
            self.close()
            raise
        total = self.ray.cluster_resources()
        gpus = f", {total['GPU']:g} GPU(s)" if total.get("GPU") else ""
        self.log(f"executor ray: {nodes} node(s) for the units, {total.get('CPU', 0):g} CPU(s){gpus} in "
                 f"the cluster; the output folder is shared with them")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.cancel()
        if self._owned and self.ray is not None:
            self._owned = False
            self.ray.shutdown()

    def _connect(self) -> None:
        ray = self.ray
        address = self.settings.address or os.environ.get("RAY_ADDRESS") or None
        # the model cache the driver uses (e.g. on the shared storage), for the same weights
        runtime_env = {"env_vars": {k: v for k, v in os.environ.items() if k == "PIPELINE_MODELS"}}
        try:
            # ray.init replaces the SIGTERM handler (by one exiting without cleanup): keep ours
            with keep_handlers():
                if address in (None, "local"):
                    # A Ray instance of this run only, on this machine: no dashboard, no usage stats.
                    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                    ray.init(address="local", include_dashboard=False, runtime_env=runtime_env)
                else:
                    _check_reachable(address)  # ray.init would wait for an absent head node forever
                    ray.init(address=address, runtime_env=runtime_env)
        except ExecutorError:
            raise
        except Exception as exc:
            where = "start a local Ray instance" if address in (None, "local") else \
                f"connect to the Ray cluster at {address} (executor.address)"
            raise ExecutorError(f"executor: cannot {where}: {type(exc).__name__}: "
                                f"{_first_line(exc)}") from exc
        self._owned = True

    # --- the shared-storage check

    def _unit_options(self) -> dict[str, Any]:
        s = self.settings
        return {"num_cpus": s.num_cpus, "num_gpus": s.num_gpus, "max_retries": s.max_retries,
                "retry_exceptions": False}

    def _fitting_nodes(self) -> list[dict]:
        s = self.settings
        return [n for n in self.ray.nodes() if n.get("Alive")
                and n.get("Resources", {}).get("CPU", 0) >= s.num_cpus
                and n.get("Resources", {}).get("GPU", 0) >= s.num_gpus]

    def _check_shared_output(self) -> int:
        """A probe file written here must be readable by a task on every node that can run a
        unit, and one written by that task readable here. Returns how many nodes were probed."""
        ray = self.ray
        # lazy: optional dependency (the ray extra)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        state = self.root / "state"
        state.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        driver_file = f".probe-{token}"
        nodes = self._fitting_nodes()
        if nodes:  # one probe pinned to each node that can run a unit
            placements = [({"num_cpus": 0, "scheduling_strategy":
                            NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)},
                           n.get("NodeManagerAddress", "?")) for n in nodes]
        else:  # e.g. an autoscaling cluster with no worker yet: one probe with a unit's resources
            placements = [({"num_cpus": self.settings.num_cpus,
                            "num_gpus": self.settings.num_gpus}, "?")]
        written = [state / driver_file]
        written += [state / f"{driver_file}-{i}" for i in range(len(placements))]
        try:
            (state / driver_file).write_text(token, encoding="utf-8")
            task = ray.remote(_call_in)
            refs = [task.options(**opts, max_retries=1).remote(
                        os.getcwd(), _probe, str(self.root), driver_file, f"{driver_file}-{i}",
                        token)
                    for i, (opts, _) in enumerate(placements)]
            _, late = ray.wait(refs, num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
            answers = [self._probe_answer(ref) for ref in refs if ref not in late]
            for ref in late:
                ray.cancel(ref, force=True)
            if late or all(answer is None for answer in answers):
                raise ExecutorError(
                    f"executor: no Ray worker ran a probe task within {PROBE_TIMEOUT_S:.0f} s; does "
                    f"the cluster have a node with {self.settings.num_cpus:g} CPU(s) and "
                    f"{self.settings.num_gpus:g} GPU(s) (executor.num_cpus, executor.num_gpus)?")
            for i, ((_, ip), answer) in enumerate(zip(placements, answers)):
                if answer is None:  # a node that went away runs no unit
                    continue
                problem = answer["error"]
                if problem is None:
                    theirs = state / f"{driver_file}-{i}"
                    try:
                        if theirs.read_text(encoding="utf-8") != token:
                            problem = f"wrote {theirs}, but this machine reads other content there"
                    except OSError:
                        problem = (f"wrote {answer['path']}/state/{theirs.name}, but this machine "
                                   "does not see it")
                if problem is not None:
                    raise ExecutorError(
                        f"executor: the output folder {self.root.resolve()} is not shared with "
                        f"the Ray workers: a task on node {answer['host']} ({ip}) {problem}. With "
                        "the ray executor the output folder must be on storage every node mounts "
                        "at the same path (NFS, a cluster file system); give it as an absolute path.")
            return sum(answer is not None for answer in answers)
        finally:
            for path in written:
                try:
                    path.unlink()
                except OSError:
                    pass

    def _probe_answer(self, ref: Any) -> dict[str, Any] | None:
        """A probe's answer; None when its node is gone (Ray lists a dead node as alive for a
        while after it died, and a probe pinned there cannot run)."""
        ray = self.ray
        try:
            return ray.get(ref)
        except (ray.exceptions.TaskUnschedulableError, ray.exceptions.NodeDiedError):
            return None
        except ray.exceptions.RayError as exc:
            raise ExecutorError(
                f"executor: a Ray worker cannot run this project's code ({type(exc).__name__}: "
                f"{_first_line(exc)}); install it on every node ({RAY_INSTALL_HINT}, same Python "
                "and Ray versions as here)") from exc

    # --- mapping

    def _window(self) -> int:
        """Tasks kept in flight: enough to keep every fitting slot busy, few enough that Ctrl-C
        cancels them at once (the rest are submitted as these finish)."""
        s = self.settings
        resources = self.ray.cluster_resources()
        slots = resources.get("CPU", 1) / s.num_cpus
        if s.num_gpus:
            slots = min(slots, resources.get("GPU", 0) / s.num_gpus)
        return max(16, int(4 * slots))

    def map(self, fn: Callable[..., T], items: Sequence[Any], common: Sequence[Any] = (),
            lost: Lost | None = None) -> Iterator[T]:
        ray = self.ray
        items = list(items)
        task = ray.remote(_run_unit).options(**self._unit_options())
        # Inline in each task (a config is small), not ray.put: an object of the driver in the
        # node's object store makes Ray end the driver at once, with no cleanup, when that node's
        # raylet dies; without one the driver sees LocalRayletDiedError and stops cleanly.
        shared = (fn, tuple(common))
        cwd, window, queued = os.getcwd(), self._window(), iter(items)
        try:
            while True:
                while len(self._pending) < window:
                    item = next(queued, _END)
                    if item is _END:
                        break
                    self._pending[task.remote(cwd, shared, item)] = item
                if not self._pending:
                    return
                done, _ = ray.wait(list(self._pending), num_returns=1, timeout=0.5)
                for ref in done:
                    yield self._result(ref, self._pending.pop(ref), lost)
        except BaseException:  # Ctrl-C, an error, or the caller closing us early
            self.cancel()
            raise

    def _result(self, ref: Any, item: Any, lost: Lost | None) -> Any:
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the unit itself raised: the run's error
            raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from exc
        except ray.exceptions.LocalRayletDiedError as exc:  # every unit is lost, not this one
            self._node_lost = True
            raise NodeLost("executor: the Ray node of this run died (its raylet stopped: killed, "
                           "or out of memory); finished units are kept: run the same command "
                           "again to resume") from exc
        except ray.exceptions.RayError as exc:  # its worker or node died more than max_retries times
            if lost is None:
                raise
            return lost(item, exc)

    def cancel(self, within: float = 10.0) -> None:
        """Stop the tasks still queued or running (their workers are killed), and wait for them
        to go, so that the caller can clean up after them. A cancel that reaches a task while
        it is being handed to a worker can be lost, so the ones still there are asked again."""
        if self._node_lost:  # nothing runs any more, and a cancel would wait for the dead node
            self._pending.clear()
        if not self._pending or self.ray is None:
            return
        ray, refs = self.ray, list(self._pending)
        self._pending.clear()
        deadline = time.monotonic() + within
        while refs:
            for ref in refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # finished meanwhile, or already cancelled
                    pass
            try:
                _, refs = ray.wait(refs, num_returns=len(refs), timeout=1.0)
            except Exception:
                return
            if refs and time.monotonic() > deadline:
                self.log(f"warning: {len(refs)} Ray task(s) did not stop when cancelled")
                return


_END = object()


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) address must accept a connection."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\[\]]+?)\]?:(\d+)", address.strip())
    if m is None:  # "auto" and the like: ray.init says what is wrong
        return
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout).close()
    except OSError as exc:
        raise ExecutorError(f"executor: cannot reach the Ray cluster at {address} "
                            f"(executor.address): {exc.strerror or exc}; is its head node running "
                            "(ray start --head)?") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
