"""A single-node SLURM cluster on this machine, for the SLURM workflow test.

From Debian's packages (``slurm-wlm``, ``munge``; .ci/run installs them): a private
munged, slurmctld and slurmd on localhost, every file (key, sockets, state, spool, logs,
slurm.conf) in one folder, on free ports, so the cluster touches nothing system-wide and
two test runs on one machine do not meet. Clients find it through ``SLURM_CONF`` in
:attr:`SlurmCluster.env`. Needs root (slurmd starts job steps as the submitting user).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")
#: seconds for the daemons to come up
START_TIMEOUT = 60


class ClusterUnavailable(RuntimeError):
    """The packages are missing or the daemons did not start (the reason is the message)."""


def _free_ports(n: int) -> list[int]:
    """n distinct ports free on 127.0.0.1 now (held together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _mem_total_mb() -> int:
    """MemTotal of /proc/meminfo in MB (what slurmd reports as the node's RealMemory)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailable("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """slurmctld + slurmd for node ``localhost`` (CPUs=2) with the given partitions.

    Use as a context manager; leaving it cancels every job and stops the daemons.

    Args:
        root: an empty folder for the cluster's files.
        partitions: partition names, all on the one node; none is the default partition,
            so a job reaches one only when its submission names it.

    Raises:
        ClusterUnavailable: a package is missing, not root, or a daemon did not start.
    """

    def __init__(self, root: Path, partitions: tuple[str, ...]):
        self.root = Path(root)
        self.partitions = partitions
        self.conf = self.root / "slurm.conf"
        self._procs: dict[str, subprocess.Popen] = {}
        missing = [d for d in DAEMONS if shutil.which(d) is None]
        if missing:
            raise ClusterUnavailable(
                f"SLURM/munge programs not installed: {', '.join(missing)} "
                "(apt-get install slurm-wlm munge, as .ci/run does)"
            )
        if os.geteuid() != 0:
            raise ClusterUnavailable("slurmd must run as root to start jobs")
        # The job-step executor of snakemake-executor-plugin-slurm drops every SLURM_*
        # variable, SLURM_CONF included, before its inner `srun`; a real node finds its
        # slurm.conf in /etc/slurm or configless /run/slurm/conf. This private cluster
        # instead puts an `srun` first on the jobs' PATH that names its slurm.conf.
        self.bin = self.root / "bin"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        self.env = env

    # ------------------------------------------------------------------- start / stop
    def __enter__(self) -> SlurmCluster:
        try:
            self._write_files()
            self._start("munged", self._munged_cmd())
            self._wait(lambda: (self.root / "munge" / "munge.sock").exists(), "munged")
            self._start("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
            self._wait(lambda: self._ok(["scontrol", "ping"], "UP"), "slurmctld")
            self._start("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", "localhost"])
            self._wait(lambda: self._ok(["sinfo", "-h", "-N", "-o", "%T"], "idle"), "slurmd")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "--user", "root"], env=self.env, check=False)
            time.sleep(1)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ------------------------------------------------------------------------ queries
    def job(self, jobid: str) -> dict[str, str]:
        """``scontrol show job`` of one job as a dict (JobState, Partition, Comment, ...)."""
        res = subprocess.run(
            ["scontrol", "show", "job", "-o", str(jobid)],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return dict(f.split("=", 1) for f in res.stdout.split() if "=" in f)

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.root / "log" / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    # ------------------------------------------------------------------------ helpers
    def _write_files(self) -> None:
        for sub in ("munge", "state", "spool", "log", "bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{shutil.which("srun")}" "$@"\n')
        srun.chmod(0o755)
        r = self.root
        ctld_port, slurmd_port = _free_ports(2)
        lines = [
            "ClusterName=disrnn-test",
            "SlurmctldHost=localhost",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r}/munge/munge.sock",
            f"StateSaveLocation={r}/state",
            f"SlurmdSpoolDir={r}/spool",
            f"SlurmctldPidFile={r}/slurmctld.pid",
            f"SlurmdPidFile={r}/slurmd.pid",
            f"SlurmctldLogFile={r}/log/slurmctld.log",
            f"SlurmdLogFile={r}/log/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",  # memory is checked, not consumed
            "SlurmdParameters=config_overrides",  # the node as written, whatever the host
            "ReturnToService=2",
            # finished jobs stay visible to squeue/scontrol (no accounting database) for
            # the plugin's status checks and the test's
            "MinJobAge=3600",
            f"NodeName=localhost CPUs=2 RealMemory={_mem_total_mb()} State=UNKNOWN",
        ]
        lines += [
            f"PartitionName={p} Nodes=localhost Default=NO MaxTime=INFINITE State=UP"
            for p in self.partitions
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _munged_cmd(self) -> list[str]:
        m = self.root / "munge"
        return [
            "munged",
            "--foreground",
            "--force",
            f"--socket={m}/munge.sock",
            f"--key-file={m}/munge.key",
            f"--pid-file={m}/munged.pid",
            f"--seed-file={m}/munged.seed",
            f"--log-file={self.root}/log/munged.log",
        ]

    def _start(self, name: str, cmd: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "w")  # noqa: SIM115 - kept by the process
        self._procs[name] = subprocess.Popen(
            cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _ok(self, cmd: list[str], word: str) -> bool:
        res = subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=False)
        return res.returncode == 0 and word in res.stdout

    def _wait(self, ready, name: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ready():
                return
            if self._procs[name].poll() is not None:
                break
            time.sleep(0.5)
        out = (self.root / "log" / f"{name}.out").read_text(errors="replace")[-2000:]
        raise ClusterUnavailable(
            f"{name} did not start within {START_TIMEOUT} s; its output:\n{out}\n"
            f"its log:\n{self.log_tail(name)}"
        )
