#!/usr/bin/env python3
"""The container image's runtime stage (docker/Dockerfile) proven with the built tbproxy, no daemon:

1. chroot proof (always): a Debian bookworm root made by `debootstrap --variant=minbase`, then
   the runtime stage's own RUN instructions run inside it (its apt-get install of exactly the
   Dockerfile's packages, the tbproxy user), the binary copied to the COPY destination. Checked:
   every shared library resolves (ldd inside the root), tbproxy starts as the Dockerfile's USER
   with only its ENV and ENTRYPOINT (no arguments, like `docker run tbproxy`) on its embedded dev
   cluster in a network namespace of its own, the HEALTHCHECK command itself answers when run
   inside the root, grpc.health.v1 answers SERVING, SIGTERM stops it with exit code 0.
2. image proof (when podman and runc can run containers here): the runtime stage's text,
   verbatim, built by podman with the debootstrap root imported as debian:bookworm-slim and the
   build stage's output supplied as a build context holding the built binary; the image run
   with no arguments and checked the same way (`podman healthcheck run` runs the image's HEALTHCHECK). When podman
   is missing or cannot run a container, the output says why and only the chroot proof counts.

Needs root (chroot, namespaces), debootstrap and a Debian mirror. The roots and podman's storage
are cached in ~/.cache/tbproxy/container (TBPROXY_CONTAINER_CACHE overrides), keyed by a hash of
the runtime stage's RUN instructions, so only a changed package list rebuilds them.

    container_test.py path/to/tbproxy
"""
import argparse
import hashlib
import os
import pathlib
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from check_docker import DOCKERFILE, dockerfile_stages, runtime_packages  # noqa: E402

MIRROR = os.environ.get("TBPROXY_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = pathlib.Path(os.environ.get("TBPROXY_CONTAINER_CACHE",
                                    pathlib.Path.home() / ".cache" / "tbproxy" / "container"))
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
PODMAN_IMAGE = "localhost/tbproxy-container-test:latest"
# The base image name the runtime stage starts FROM, given to the imported debootstrap root.
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"


def log(message):
    print(f"container_test: {message}", flush=True)


def run(command, **kwargs):
    """Runs `command`, raising with its output when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{shlex.join(map(str, command))} exited {result.returncode}:\n"
                             f"{result.stdout}{result.stderr}")
    return result.stdout


class RuntimeStage:
    """What docker/Dockerfile's runtime stage says, parsed (never restated here)."""

    def __init__(self):
        stage = dockerfile_stages()["runtime"]
        self.base = stage[0][1]
        self.runs = [arguments for name, arguments in stage if name == "RUN"]
        self.packages = runtime_packages()
        (user,) = [arguments for name, arguments in stage if name == "USER"]
        self.user = user
        self.env = {}
        for arguments in (arguments for name, arguments in stage if name == "ENV"):
            self.env.update(word.split("=", 1) for word in shlex.split(arguments))
        (entrypoint,) = [arguments for name, arguments in stage if name == "ENTRYPOINT"]
        self.entrypoint = eval(entrypoint, {})  # exec form: a JSON array of strings
        (healthcheck,) = [arguments for name, arguments in stage if name == "HEALTHCHECK"]
        self.healthcheck = healthcheck.split(" CMD ", 1)[1]  # shell form, run by /bin/sh -c
        (copy,) = [arguments for name, arguments in stage if name == "COPY"]
        self.binary_path = copy.split()[-1]
        lines = DOCKERFILE.read_text().splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if line.startswith(f"FROM {self.base} AS"))
        self.text = "".join(lines[start:])
        self.key = hashlib.sha256("\n".join([self.base, *self.runs]).encode()).hexdigest()[:16]

    def port(self, variable):
        return int(self.env[variable].rsplit(":", 1)[1])


# ---- Roots made by debootstrap, cached ---------------------------------------------------------

def cached_dir(path, make):
    """`path`, made by make(temporary path) and renamed into place only when complete."""
    if path.is_dir():
        log(f"cached: {path}")
        return path
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    make(partial)
    partial.rename(path)
    log(f"made {path} in {time.monotonic() - started:.0f} s")
    return path


def base_root():
    """bookworm minbase: what debian:bookworm-slim is made from (the slim image also drops docs)."""
    def make(path):
        log(f"debootstrap --variant=minbase bookworm from {MIRROR}")
        run(["debootstrap", "--variant=minbase", "bookworm", str(path), MIRROR])
    return cached_dir(CACHE / "bookworm-minbase", make)


def in_root(root, command, user=None, env=None):
    """argv running `command` chrooted into `root` with /proc mounted in a mount namespace."""
    chroot = ["chroot"] + ([f"--userspec={user}"] if user else []) + [str(root)]
    return ["unshare", "--mount", f"--mount-proc={root}/proc", *chroot,
            "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in (env or {}).items()), *command]


ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def runtime_root(stage):
    """The base root with the runtime stage's RUN instructions run inside it, as `docker build`."""
    def make(path):
        run(["cp", "-a", "--reflink=auto", str(base_root()), str(path)])
        shutil.copy("/etc/resolv.conf", path / "etc" / "resolv.conf")
        for instruction in stage.runs:
            log(f"RUN {instruction}")
            run(in_root(path, ["/bin/sh", "-c", instruction], env={"PATH": ROOT_PATH}))
    return cached_dir(CACHE / f"runtime-{stage.key}", make)


# ---- Checks shared by both proofs --------------------------------------------------------------

def grpc_health(port):
    """grpc.health.v1.Health/Check of the whole server, by raw bytes (no generated stubs)."""
    import grpc
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        # Empty HealthCheckRequest; the reply's field 1 (status) is SERVING = 1.
        return check(b"", timeout=5)


# gRPC's health status follows the pool's readiness through a poller that runs once a second
# (tb-grpc-ready), so it may still say NOT_SERVING just after /readyz said ready.
GRPC_HEALTH_WAIT_SECONDS = 5


def check_grpc_health_in_namespace(pid, port):
    code = (f"import sys; sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r}); "
            f"import container_test; print(container_test.grpc_health({port}).hex())")
    deadline = time.monotonic() + GRPC_HEALTH_WAIT_SECONDS
    while True:
        reply = run(["nsenter", f"--target={pid}", "--net", sys.executable, "-c", code]).strip()
        if reply == "0801":
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"grpc.health.v1 Check answered {reply!r}, not SERVING (0801), "
                                 f"for {GRPC_HEALTH_WAIT_SECONDS} s")
        time.sleep(0.2)
    log("grpc.health.v1.Health/Check: SERVING")


def check_uid(pid, user):
    uid, gid = user.split(":")
    status = pathlib.Path(f"/proc/{pid}/status").read_text().splitlines()
    uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
    gids = next(line for line in status if line.startswith("Gid:")).split()[1:]
    if set(uids) != {uid} or set(gids) != {gid}:
        raise AssertionError(f"tbproxy runs as uid {uids} gid {gids}, not {user}")
    log(f"tbproxy runs as uid:gid {user}")


def wait_healthy(what, healthcheck):
    """Runs `healthcheck` (a callable returning (exit code, output)) until it exits 0."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    attempts = 0
    while True:
        attempts += 1
        code, output = healthcheck()
        if code == 0:
            log(f"{what}: healthy after {attempts} attempt(s): {output.strip()}")
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not healthy after {READY_TIMEOUT_S} s: {output}")
        time.sleep(0.5)


# ---- Proof 1: the root, chrooted ---------------------------------------------------------------

def chroot_proof(stage, binary):
    root = runtime_root(stage)
    target = root / stage.binary_path.lstrip("/")
    shutil.copy2(binary, target)
    os.chmod(target, 0o755)

    installed = run(["chroot", str(root), "dpkg-query", "-W", "-f=${Package} ${Status}\n",
                     *stage.packages])
    missing = [line for line in installed.splitlines() if "install ok installed" not in line]
    if missing:
        raise AssertionError(f"runtime packages not installed in the root: {missing}")
    log(f"root has the {len(stage.packages)} runtime packages: {' '.join(stage.packages)}")

    libraries = run(["chroot", str(root), "ldd", stage.binary_path])
    if "not found" in libraries:
        raise AssertionError(f"unresolved libraries inside the root:\n{libraries}")
    log(f"ldd inside the root: all {len(libraries.splitlines())} libraries resolve")

    env = {"PATH": ROOT_PATH, "HOME": "/", **stage.env}
    # A network namespace of its own: the Dockerfile's fixed ports cannot collide with the host's.
    process = subprocess.Popen(
        ["unshare", "--net", "--mount", f"--mount-proc={root}/proc", "/bin/sh", "-c",
         'ip link set lo up && exec "$@"', "sh", "chroot", f"--userspec={stage.user}", str(root),
         "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *stage.entrypoint],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        log(f"started {' '.join(stage.entrypoint)} as {stage.user} with "
            f"{' '.join(f'{k}={v}' for k, v in stage.env.items())} (pid {process.pid})")

        def healthcheck():
            if process.poll() is not None:
                raise AssertionError(f"tbproxy exited {process.returncode}:\n"
                                     f"{process.stdout.read()}")
            result = subprocess.run(
                ["nsenter", f"--target={process.pid}", "--net", "chroot",
                 f"--userspec={stage.user}", str(root), "/bin/sh", "-c", stage.healthcheck],
                capture_output=True, text=True)
            return result.returncode, result.stdout + result.stderr

        wait_healthy(f"HEALTHCHECK CMD {stage.healthcheck} (inside the root)", healthcheck)
        check_uid(process.pid, stage.user)
        check_grpc_health_in_namespace(process.pid, stage.port("TBPROXY_LISTEN"))
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=STOP_TIMEOUT_S)
        if code != 0:
            raise AssertionError(f"tbproxy exited {code} on SIGTERM:\n{process.stdout.read()}")
        log("SIGTERM: tbproxy drained and exited 0")
    except BaseException:
        if process.poll() is None:
            process.kill()
        log(f"tbproxy's output:\n{process.communicate()[0]}")
        raise


# ---- Proof 2: the image, built and run by podman -----------------------------------------------

class Podman:
    # podman's database records its run root: the same one every run (state only, on tmpfs).
    RUNROOT = "/run/tbproxy-container-test"

    def __init__(self):
        self.argv = ["podman", "--storage-driver=vfs", "--cgroup-manager=cgroupfs",
                     "--events-backend=file", f"--root={CACHE / 'podman'}",
                     f"--runroot={self.RUNROOT}"]

    def __call__(self, *arguments, **kwargs):
        return run([*self.argv, *arguments], **kwargs)

    @staticmethod
    def container_flags():
        """Flags of every container podman starts here (build steps and runs).

        runc, not Debian's default crun: crun 1.8 refuses cgroup v1 with a v2 hierarchy mounted
        beside it ("cgroups in hybrid mode not supported"). Explicit limits within the caller's:
        podman's default nofile/nproc exceed them and the runtime may not raise a limit here."""
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        return ["--runtime=runc", f"--ulimit=nofile={nofile}:{nofile}",
                "--ulimit=nproc=4096:4096"]


def base_image(podman):
    """The debootstrap root imported as the runtime stage's FROM image (no registry here)."""
    present = subprocess.run([*podman.argv, "image", "exists", BASE_IMAGE]).returncode == 0
    if not present:
        tarball = CACHE / "bookworm-minbase.tar"
        run(["tar", "-C", str(base_root()), "--numeric-owner", "-cf", str(tarball), "."])
        podman("import", str(tarball), BASE_IMAGE)
        tarball.unlink()
        log(f"imported the debootstrap root as {BASE_IMAGE}")


def podman_unusable(podman):
    """Why podman cannot run a container here, or None when it can."""
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-deps.sh installs it)"
    try:
        base_image(podman)
        podman("run", *podman.container_flags(), "--rm", "--network=none", "--pull=never",
               BASE_IMAGE, "true", timeout=120)
    except (AssertionError, subprocess.TimeoutExpired) as error:
        return f"podman cannot run a container here: {error}"
    return None


def image_proof(stage, binary, podman):
    with tempfile.TemporaryDirectory(prefix="tbproxy-image-") as directory:
        context = pathlib.Path(directory)
        (context / "Dockerfile").write_text(stage.text)
        # The build stage's output: the file the runtime stage's COPY --from=build takes.
        (source,) = [a.split()[-2] for n, a in dockerfile_stages()["runtime"] if n == "COPY"]
        built = context / "build-stage" / source.lstrip("/")
        built.parent.mkdir(parents=True)
        shutil.copy2(binary, built)
        started = time.monotonic()
        podman("build", *podman.container_flags(), "--format=docker", "--pull=never",
               "--network=host", f"--build-context=build={context / 'build-stage'}",
               "-t", PODMAN_IMAGE, str(context), timeout=600)
        log(f"podman built the runtime stage of {DOCKERFILE.name} as {PODMAN_IMAGE} in "
            f"{time.monotonic() - started:.0f} s")
    config = podman("image", "inspect", "--format",
                    "{{.Config.User}} {{.Config.Entrypoint}} {{.Config.Env}}", PODMAN_IMAGE)
    log(f"image config: {config.strip()}")
    name = f"tbproxy-container-test-{os.getpid()}"
    podman("run", *podman.container_flags(), "-d", "--name", name, "--network=none",
           "--pull=never", PODMAN_IMAGE)
    try:
        pid = podman("inspect", "--format", "{{.State.Pid}}", name).strip()

        def healthcheck():
            result = subprocess.run([*podman.argv, "healthcheck", "run", name],
                                    capture_output=True, text=True)
            return result.returncode, result.stdout + result.stderr or "healthy"

        wait_healthy("podman healthcheck run (the image's HEALTHCHECK)", healthcheck)
        check_uid(pid, stage.user)
        check_grpc_health_in_namespace(pid, stage.port("TBPROXY_LISTEN"))
        podman("stop", "--time", str(STOP_TIMEOUT_S), name)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name).strip()
        if code != "0":
            raise AssertionError(f"the container exited {code} on stop:\n{podman('logs', name)}")
        log("podman stop: tbproxy drained and exited 0")
    except BaseException:
        logs = subprocess.run([*podman.argv, "logs", name], capture_output=True, text=True)
        log(f"the container's output:\n{logs.stdout}{logs.stderr}")
        raise
    finally:
        subprocess.run([*podman.argv, "rm", "--force", name], capture_output=True)
        # Earlier builds' layers (an older binary) are left unnamed; the apt layer stays cached.
        subprocess.run([*podman.argv, "image", "prune", "--force"], capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", type=pathlib.Path)
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("container_test: needs root (debootstrap, chroot, namespaces); run it as root")
    for tool in ("debootstrap", "unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            sys.exit(f"container_test: {tool} is missing (scripts/install-deps.sh installs it)")
    CACHE.mkdir(parents=True, exist_ok=True)
    stage = RuntimeStage()
    started = time.monotonic()
    log("proof 1: the runtime stage's root, chrooted")
    chroot_proof(stage, arguments.binary.resolve())
    podman = Podman()
    reason = podman_unusable(podman)
    if reason:
        log(f"proof 2 NOT RUN: {reason}")
        log("only the chroot proof above holds on this machine")
    else:
        log("proof 2: the runtime stage built into an image and run by podman")
        image_proof(stage, arguments.binary.resolve(), podman)
    log(f"passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
