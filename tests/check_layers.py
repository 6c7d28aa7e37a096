#!/usr/bin/env python3
"""Fails when an #include points up a layer (STYLE.md §1).

Allowed edges: proxy -> pool, proto, devcluster (only main and tests), client_core;
pool -> client_core; devcluster -> client_core; client_core -> nothing of ours.
Tests (*_test.cc, tests/, bench/) may include anything.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ["client_core", "devcluster", "pool", "proto", "proxy"]
ALLOWED = {
    "client_core": {"client_core"},
    "devcluster": {"devcluster", "client_core"},
    "pool": {"pool", "client_core"},
    "proto": {"proto"},
    "proxy": {"proxy", "pool", "proto", "client_core"},
}
# Composition roots may wire the dev cluster in: it is the embedded default backend.
WIRING_FILES = {"proxy/main.cc", "proxy/embedded_cluster.cc", "proxy/embedded_cluster.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/')


def is_test(path: pathlib.Path) -> bool:
    name = path.name
    return ("_test" in name or name.endswith("_fuzz.cc") or "testing" in path.parts
            or "fuzz" in path.parts)


def main() -> int:
    problems = []
    checked = 0
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*")):
            if path.suffix not in (".h", ".cc") or is_test(path):
                continue
            relative = path.relative_to(ROOT).as_posix()
            allowed = set(ALLOWED[layer])
            if relative in WIRING_FILES:
                allowed.add("devcluster")
            checked += 1
            for number, line in enumerate(path.read_text().splitlines(), 1):
                match = INCLUDE.match(line)
                if match and match.group(1) in LAYERS and match.group(1) not in allowed:
                    problems.append(f"{relative}:{number}: {layer}/ must not include "
                                    f"{match.group(1)}/ ({line.strip()})")
    for problem in problems:
        print(problem)
    print(f"layering: {checked} files checked, {len(problems)} upward includes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
