#!/usr/bin/env python3
"""Fails when a production C++ function body is longer than 70 lines (TigerBeetle's limit).

A function is counted from the line its declaration starts on to the line of its closing brace,
lambdas included in the function that holds them. Tests, fuzzers and test helpers are left out.

    tests/check_function_length.py            # exit 1 and one line per function over the limit
    tests/check_function_length.py --top 10   # also list the ten longest functions
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ["client_core", "devcluster", "pool", "proxy", "bench"]
LIMIT = 70
# Keywords whose braces open a scope that may hold functions, or an initializer, not a body.
SCOPE = re.compile(r"\b(namespace|class|struct|union|enum)\b")
CONTROL = re.compile(r"^\s*(if|for|while|switch|catch|do|else|try)\b")


def is_test(path: pathlib.Path) -> bool:
    name = path.name
    return ("_test" in name or "testing" in path.parts or "fuzz" in path.parts
            or name.endswith("_test_util.h"))


def blank_out(text: str) -> str:
    """Replaces comments, string and character literals by spaces, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            k = text.find("(", i)
            delimiter = text[i + 2:k]
            j = text.find(")" + delimiter + '"', k)
            j = n if j < 0 else j + len(delimiter) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator: 10'000
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (j + 1 - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text: str):
    """Yields (name, first line, last line) of every outermost function body in text."""
    code = blank_out(text)
    # Stack of "scope" (namespace/class body or initializer) and "function" entries.
    stack = []
    statement_start = 0  # Offset where the text before the next brace begins.
    i = 0
    while i < len(code):
        c = code[i]
        if c == "#" and (i == 0 or code[i - 1] == "\n"):  # Preprocessor line: skip it.
            while i < len(code) and code[i] != "\n":
                i += 2 if code[i] == "\\" else 1
            statement_start = i
            continue
        if c == "{":
            head = code[statement_start:i]
            inside_function = any(kind == "function" for kind, _, _ in stack)
            stripped = head.strip()
            is_body = (not inside_function and ")" in stripped and not SCOPE.search(stripped)
                       and not stripped.endswith("=") and not CONTROL.match(stripped))
            if is_body:
                start = statement_start + len(head) - len(head.lstrip())
                name = re.findall(r"([~\w:]+)\s*\(", stripped)
                stack.append(("function", start, name[0] if name else "?"))
            else:
                stack.append(("scope", i, ""))
            statement_start = i + 1
        elif c == "}":
            if stack:
                kind, start, name = stack.pop()
                if kind == "function":
                    first = code.count("\n", 0, start) + 1
                    last = code.count("\n", 0, i) + 1
                    yield name, first, last
            statement_start = i + 1
        elif c == ";":
            statement_start = i + 1
        elif c == ":" and code[statement_start:i].strip() in ("public", "private", "protected"):
            statement_start = i + 1
        i += 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=0, help="list the N longest functions")
    args = parser.parse_args()
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".h", ".cc") or is_test(path):
                continue
            relative = path.relative_to(ROOT).as_posix()
            for name, first, last in functions(path.read_text()):
                found.append((last - first + 1, relative, first, name))
    found.sort(reverse=True)
    over = [f for f in found if f[0] > LIMIT]
    for lines, relative, first, name in over:
        print(f"{relative}:{first}: {name} is {lines} lines (limit {LIMIT})")
    for lines, relative, first, name in found[:args.top]:
        print(f"  {lines:4d} {relative}:{first} {name}")
    print(f"function length: {len(found)} functions checked, {len(over)} over {LIMIT} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
