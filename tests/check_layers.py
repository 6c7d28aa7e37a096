#!/usr/bin/env python3
"""Fails when an #include points up a layer (STYLE.md §1) or at a target that is not linked.

1. Layers: proxy -> pool, proto, devcluster (only the app's wiring), client_core;
   pool -> client_core; devcluster -> client_core; client_core -> nothing of ours.
   Production files only: tests may reach any layer, through their links (rule 2).
2. Includes match links: every file of a target (its sources and the headers it owns), tests,
   fuzzers and generated proto headers included, may include a header of this repository only
   when the target owning that header is the target itself or one it links, directly or not.
   A header is owned by the tb_header_library that lists it, else by the target with a source
   of the same name beside it, else by the target whose sources sit in the nearest folder above.
   Test helpers (names with _test, folders testing/) must be listed by a tb_header_library.

Targets and links are read from the CMakeLists.txt files (tb_library, tb_header_library,
tb_executable, tb_test, tb_fuzzer, add_library, target_link_libraries, set/list(APPEND)).
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
# The app may wire the dev cluster in: it is the embedded default backend.
WIRING_FOLDER = "proxy/app/"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
GENERATED = {"tbproxy/v1/tbproxy.pb.h": "tb_proto", "tbproxy/v1/tbproxy.grpc.pb.h": "tb_proto"}
SCANNED = ["client_core", "devcluster", "pool", "proxy", "bench", "tests"]
TARGET_COMMANDS = {"tb_library", "tb_header_library", "tb_executable", "tb_test", "tb_fuzzer"}
KEYWORDS = {"SOURCES", "HEADERS", "DEPS", "LABELS", "PUBLIC", "PRIVATE", "INTERFACE", "STATIC",
            "SYSTEM"}


def is_test(path: pathlib.Path) -> bool:
    name = path.name
    return ("_test" in name or name.startswith("test_") or name.endswith("_fuzz.cc")
            or "testing" in path.parts
            or "fuzz" in path.parts)


class Target:
    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind
        self.sources: list[pathlib.Path] = []
        self.headers: list[pathlib.Path] = []
        self.deps: set[str] = set()


def cmake_calls(text: str):
    """Yields (command, [arguments]) of every call in a CMakeLists.txt, comments removed."""
    text = re.sub(r"#[^\n]*", "", text)
    for match in re.finditer(r"\b(\w+)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)", text):
        yield match.group(1), match.group(2).split()


def read_targets() -> dict[str, Target]:
    targets: dict[str, Target] = {}
    variables: dict[str, list[str]] = {}
    files = [ROOT / "CMakeLists.txt"] + sorted(
        p for folder in SCANNED for p in (ROOT / folder).rglob("CMakeLists.txt")
        if "node_modules" not in p.parts)
    for cmake in files:
        folder = cmake.parent
        for command, args in cmake_calls(cmake.read_text()):
            args = [value for arg in args
                    for value in (variables.get(arg[2:-1], []) if arg.startswith("${") else [arg])]
            if command == "set" and args:
                variables[args[0]] = args[1:]
            elif command == "list" and len(args) > 2 and args[0] == "APPEND":
                variables.setdefault(args[1], []).extend(args[2:])
            elif command in TARGET_COMMANDS and args:
                target = targets.setdefault(args[0], Target(args[0], command))
                section = None
                for arg in args[1:]:
                    if arg in ("SOURCES", "HEADERS", "DEPS", "LABELS"):
                        section = arg
                    elif section == "SOURCES":
                        target.sources.append((folder / arg).resolve())
                    elif section == "HEADERS":
                        target.headers.append((folder / arg).resolve())
                    elif section == "DEPS":
                        target.deps.add(arg)
                if command == "tb_test":
                    target.deps.update({"gtest", "gmock"})
            elif command == "add_library" and args:
                targets.setdefault(args[0], Target(args[0], command))
            elif command == "target_link_libraries" and args and args[0] in targets:
                targets[args[0]].deps.update(a for a in args[1:] if a not in KEYWORDS)
    return targets


def closure(name: str, targets: dict[str, Target]) -> set[str]:
    seen, todo = {name}, [name]
    while todo:
        current = targets.get(todo.pop())
        for dep in current.deps if current else ():
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def header_owners(targets: dict[str, Target]) -> dict[pathlib.Path, str]:
    owners: dict[pathlib.Path, str] = {}
    for target in targets.values():
        for header in target.headers:
            owners[header] = target.name
    by_stem: dict[pathlib.Path, str] = {}
    by_folder: dict[pathlib.Path, str] = {}
    for target in targets.values():
        for source in target.sources:
            by_stem.setdefault(source.with_suffix(".h"), target.name)
            if target.kind in ("tb_library", "add_library") or source.parent not in by_folder:
                if by_folder.get(source.parent) is None or target.kind == "tb_library":
                    by_folder[source.parent] = target.name
    for folder in SCANNED:
        for header in (ROOT / folder).rglob("*.h"):
            header = header.resolve()
            if header in owners or "node_modules" in header.parts:
                continue
            if header in by_stem:
                owners[header] = by_stem[header]
            elif is_test(header.relative_to(ROOT)):
                continue  # Must be listed by a tb_header_library; reported below.
            else:
                for parent in header.parents:
                    if parent in by_folder:
                        owners[header] = by_folder[parent]
                        break
    return owners


def check_links(targets, owners, problems) -> int:
    checked = 0
    for folder in SCANNED:
        for header in sorted((ROOT / folder).rglob("*.h")):
            if header.resolve() not in owners and "node_modules" not in header.parts:
                problems.append(f"{header.relative_to(ROOT)}: belongs to no target (list it in "
                                f"a tb_header_library)")
    files_of: dict[str, set[pathlib.Path]] = {name: set(t.sources) for name, t in
                                              targets.items()}
    for header, owner in owners.items():
        files_of.setdefault(owner, set()).add(header)
    for name, files in sorted(files_of.items()):
        reachable = closure(name, targets)
        for path in sorted(files):
            if not path.exists() or path.suffix not in (".h", ".cc"):
                continue
            checked += 1
            text = path.read_text()
            for match in INCLUDE.finditer(text):
                included = match.group(1)
                owner = GENERATED.get(included)
                if owner is None:
                    candidate = (ROOT / included).resolve()
                    if not candidate.exists() or included.split("/")[0] not in SCANNED:
                        continue
                    owner = owners.get(candidate)
                    if owner is None:
                        continue  # Reported above as a header with no target.
                if owner not in reachable:
                    line = text.count("\n", 0, match.start()) + 1
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {name} includes "
                                    f"{included} of {owner} without linking it")
    return checked


def check_layers(problems) -> int:
    checked = 0
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*")):
            if path.suffix not in (".h", ".cc") or is_test(path):
                continue
            relative = path.relative_to(ROOT).as_posix()
            allowed = set(ALLOWED[layer])
            if relative.startswith(WIRING_FOLDER):
                allowed.add("devcluster")
            checked += 1
            for number, line in enumerate(path.read_text().splitlines(), 1):
                match = re.match(r'^\s*#\s*include\s+"([^"/]+)/', line)
                if match and match.group(1) in LAYERS and match.group(1) not in allowed:
                    problems.append(f"{relative}:{number}: {layer}/ must not include "
                                    f"{match.group(1)}/ ({line.strip()})")
    return checked


def main() -> int:
    problems: list[str] = []
    layered = check_layers(problems)
    targets = read_targets()
    linked = check_links(targets, header_owners(targets), problems)
    for problem in problems:
        print(problem)
    print(f"layering: {layered} production files checked for upward includes, {linked} files of "
          f"{len(targets)} targets checked against their links, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
