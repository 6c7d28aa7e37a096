#!/usr/bin/env python3
"""Checks docker/ without a Docker engine:

- the Dockerfile's build stage runs the README's build commands, in order, and nothing else of
  ours (so the image is built the way a developer builds);
- scripts/run.sh uses the same commands;
- the runtime stage is bookworm, non-root, has a HEALTHCHECK on /readyz and exposes the ports;
- every runtime package is a real bookworm package name (installed here as a dependency of the
  -dev packages), and, given the built binary (argument --binary), provides every shared library
  it needs;
- compose.yaml wires TigerBeetle, tbproxy, Prometheus and Grafana consistently.
"""
import argparse
import pathlib
import re
import shlex
import subprocess
import sys
import unittest

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
BINARY = None


def readme_build_commands():
    """The commands of the README's "Build only" block."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Build only\n+```sh\n(.*?)```", text, re.S | re.M)
    if not match:
        raise AssertionError('README.md has no "## Build only" section with a sh block')
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


def dockerfile_stages():
    """{stage name: [(instruction, arguments)]}, with continuation lines joined."""
    stages = {}
    current = None
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        logical += line.rstrip("\\").strip() + " "
        if line.endswith("\\"):
            continue
        instruction, _, arguments = logical.strip().partition(" ")
        logical = ""
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", arguments, re.I)
            if not match:
                raise AssertionError(f"every FROM needs a stage name: FROM {arguments}")
            current = match.group(2)
            stages[current] = [("FROM", match.group(1))]
        else:
            stages[current].append((instruction, arguments.strip()))
    return stages


class DockerfileTest(unittest.TestCase):
    stages = dockerfile_stages()

    def instructions(self, stage, name):
        return [arguments for instruction, arguments in self.stages[stage] if instruction == name]

    def test_build_stage_runs_the_readme_commands(self):
        commands = readme_build_commands()
        self.assertEqual(commands, ["scripts/install-deps.sh", "scripts/build.sh --target tbproxy"])
        ours = [run for run in self.instructions("build", "RUN") if run.startswith("scripts/")]
        self.assertEqual(ours, commands)
        self.assertEqual(self.stages["build"][0], ("FROM", "debian:bookworm"))

    def test_run_script_uses_the_same_commands(self):
        script = (ROOT / "scripts" / "run.sh").read_text().splitlines()
        for command in readme_build_commands():
            self.assertIn(command, [line.strip() for line in script])

    def test_runtime_stage_is_small_non_root_and_health_checked(self):
        runtime = self.stages["runtime"]
        self.assertEqual(runtime[0], ("FROM", "debian:bookworm-slim"))
        user = self.instructions("runtime", "USER")
        self.assertEqual(len(user), 1)
        self.assertNotIn(user[0].split(":")[0], ("0", "root"))
        healthcheck = self.instructions("runtime", "HEALTHCHECK")
        self.assertEqual(len(healthcheck), 1)
        self.assertIn("/readyz", healthcheck[0])
        self.assertEqual(self.instructions("runtime", "EXPOSE"), ["50051 9464"])
        copies = self.instructions("runtime", "COPY")
        self.assertEqual(copies, ["--from=build /src/build/proxy/tbproxy /usr/local/bin/tbproxy"])
        # No compiler or -dev package reaches the runtime image.
        for package in runtime_packages():
            self.assertFalse(package.endswith("-dev"), package)
        self.assertNotIn("clang", runtime_packages())

    def test_runtime_packages_exist_in_bookworm(self):
        for package in runtime_packages():
            with self.subTest(package):
                status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                        capture_output=True, text=True)
                self.assertIn("install ok installed", status.stdout,
                              f"{package} is not a package of this bookworm machine")

    def test_runtime_packages_provide_every_library_of_the_binary(self):
        if BINARY is None:
            self.skipTest("no --binary given (tbproxy not built in this configuration)")
        self.assertEqual(library_packages(BINARY) - set(runtime_packages()) - ESSENTIAL, set(),
                         "add these runtime packages to docker/Dockerfile")


# The C and C++ runtime come with every Debian image.
ESSENTIAL = {"libc6", "libgcc-s1", "libstdc++6"}


def library_packages(binary):
    """The Debian packages that own the shared libraries `binary` loads."""
    output = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
    paths = set()
    for line in output.stdout.splitlines():
        match = re.search(r"=>\s+(/\S+)", line)
        if match:
            path = pathlib.Path(match.group(1))
            # Debian's merged /usr: dpkg may know the file under either name.
            paths |= {str(path), str(path.resolve()), re.sub(r"^/usr/lib/", "/lib/", str(path)),
                      re.sub(r"^/lib/", "/usr/lib/", str(path))}
    owners = subprocess.run(["dpkg", "-S", *sorted(paths)], capture_output=True, text=True)
    packages = set()
    for line in owners.stdout.splitlines():
        packages |= {name.strip().split(":")[0] for name in line.split(": ")[0].split(",")}
    if not packages:
        raise AssertionError(f"no package owns any library of {binary}")
    return packages


def runtime_packages():
    stages = dockerfile_stages()
    runs = " ".join(arguments for instruction, arguments in stages["runtime"] if instruction == "RUN")
    match = re.search(r"apt-get install (.*?)(?:&&|$)", runs)
    if not match:
        raise AssertionError("the runtime stage installs no packages")
    return [word for word in shlex.split(match.group(1)) if not word.startswith("-")]


class ComposeTest(unittest.TestCase):
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())

    def test_runs_the_official_tigerbeetle_image_with_format_and_start(self):
        tigerbeetle = self.compose["services"]["tigerbeetle"]
        self.assertRegex(tigerbeetle["image"], r"^ghcr\.io/tigerbeetle/tigerbeetle:0\.17\.\d+$")
        script = " ".join(tigerbeetle["command"])
        self.assertIn("format --cluster=0 --replica=0 --replica-count=1", script)
        self.assertIn("start --addresses=0.0.0.0:3000", script)

    def test_tbproxy_is_built_here_and_points_at_tigerbeetle(self):
        tbproxy = self.compose["services"]["tbproxy"]
        self.assertEqual(tbproxy["build"], {"context": "..", "dockerfile": "docker/Dockerfile"})
        self.assertIn("--cluster-addresses=tigerbeetle:3000", tbproxy["command"])
        self.assertIn("tigerbeetle", tbproxy["depends_on"])

    def test_tbproxy_flags_are_real_settings(self):
        settings = set(re.findall(r"^TB_SETTING_FLAG\((\w+),",
                                  (ROOT / "proxy" / "app" / "config.cc").read_text(), re.M))
        self.assertGreater(len(settings), 10)
        for flag in self.compose["services"]["tbproxy"]["command"]:
            name = flag.removeprefix("--").split("=")[0].replace("-", "_")
            self.assertIn(name, settings, flag)
        for variable in re.findall(r"\bTBPROXY_([A-Z_]+)=", DOCKERFILE.read_text()):
            self.assertIn(variable.lower(), settings, variable)

    def test_prometheus_scrapes_tbproxy_and_grafana_is_provisioned(self):
        prometheus = yaml.safe_load((ROOT / "docker" / "prometheus" / "prometheus.yml").read_text())
        targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
        metrics_flag = [f for f in self.compose["services"]["tbproxy"]["command"]
                        if f.startswith("--metrics-listen=")]
        self.assertEqual(len(metrics_flag), 1)
        self.assertEqual(targets, ["tbproxy:" + metrics_flag[0].rsplit(":", 1)[1]])
        for service in ("prometheus", "grafana"):
            for volume in self.compose["services"][service]["volumes"]:
                source = volume.split(":")[0]
                self.assertTrue((ROOT / "docker" / source).exists(), f"{service}: {source}")
        datasource = yaml.safe_load((ROOT / "docker" / "grafana" / "provisioning" / "datasources" /
                                     "prometheus.yaml").read_text())
        self.assertEqual(datasource["datasources"][0]["url"], "http://prometheus:9090")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", type=pathlib.Path)
    arguments, rest = parser.parse_known_args()
    if arguments.binary is not None and arguments.binary.exists():
        BINARY = arguments.binary
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
