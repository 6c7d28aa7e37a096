#!/usr/bin/env python3
"""Runs the README's API examples against a real tbproxy and keeps the README in step with them.

1. Starts tbproxy on 127.0.0.1 port 0 with its embedded dev cluster.
2. Runs examples/python/quickstart.py (stubs generated with the README's protoc command) and
   examples/node/quickstart.js (grpc-js from tests/node/node_modules), the address once as an
   argument and once in TBPROXY_ADDRESS, and checks the balances they print.
3. Checks that README.md holds each example file verbatim in a fenced code block, and the
   commands that run them.
4. Checks that the README's configuration table lists exactly the flags of `tbproxy --helpfull`
   (those defined in proxy/app/config.cc), each with its TBPROXY_* variable and documented default,
   and that its Dependencies section names every package scripts/install-deps.sh and
   tests/node/package.json install.

usage: examples_test.py <tbproxy binary> <repository root> [--node=<node binary or empty>]
Exit 0: all passed; 77: all passed but Node was not available (the Node example did not run).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

TIMEOUT = 60  # Seconds for one example run: a bound for a hung process, not a speed check.
SKIPPED = 77

# The README's commands that make the Python stubs, run by the test as written (with a temporary
# directory in place of build/python). Debian's python3-grpcio is for /usr/bin/python3, which
# may not be the first python3 on PATH.
STUB_COMMANDS = ("mkdir -p build/python\n"
                 "/usr/bin/python3 -m grpc_tools.protoc -I proto --python_out=build/python "
                 "--grpc_python_out=build/python proto/tbproxy/v1/tbproxy.proto\n")
PYTHON_RUN = ("PYTHONPATH=build/python /usr/bin/python3 examples/python/quickstart.py "
              "127.0.0.1:50051")
NODE_RUN = "NODE_PATH=tests/node/node_modules node examples/node/quickstart.js 127.0.0.1:50051"

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL: " + message, flush=True)
    return condition


# ---- tbproxy --------------------------------------------------------------------------------

def start_proxy(binary):
    process = subprocess.Popen([binary, "--listen=127.0.0.1:0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("tbproxy listening on port "):
        process.kill()
        raise RuntimeError("tbproxy did not start: %r %s" % (line, process.stderr.read()))
    threading.Thread(target=process.stderr.read, daemon=True).start()  # Keep stderr drained.
    return process, int(line.split()[-1])


def stop_proxy(process):
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=60)
    check(code == 0, "tbproxy exited with %d after SIGTERM" % code)


# ---- Examples -------------------------------------------------------------------------------

BALANCE_LINE = re.compile(r"^account ([0-9a-f]{32}) debits_posted=(\d+) credits_posted=(\d+)$")


def check_balances(name, result):
    """The example's output: the debit account, then the credit account, of one 100 transfer."""
    if not check(result.returncode == 0, "%s exited with %d: %s%s" % (
            name, result.returncode, result.stdout, result.stderr)):
        return None
    lines = result.stdout.strip().splitlines()
    matches = [BALANCE_LINE.match(line) for line in lines]
    if not check(len(lines) == 2 and all(matches), "%s printed %r" % (name, result.stdout)):
        return None
    balances = [(int(m.group(2)), int(m.group(3))) for m in matches]
    check(balances == [(100, 0), (0, 100)], "%s balances %r" % (name, balances))
    check(matches[0].group(1) != matches[1].group(1), "%s: one id for both accounts" % name)
    return {m.group(1) for m in matches}


def check_failure_report(name, result):
    """Against an address where nothing listens: exit 1 and the gRPC code on stderr."""
    check(result.returncode == 1 and "UNAVAILABLE" in result.stderr,
          "%s against nothing: %d %r" % (name, result.returncode, result.stderr))


def run_examples(root, port, node):
    address = "127.0.0.1:%d" % port
    nothing = "127.0.0.1:1"
    ids = []
    with tempfile.TemporaryDirectory() as stubs:
        for line in STUB_COMMANDS.replace("build/python", stubs).splitlines():
            subprocess.run(line.split(), cwd=root, check=True)
        check(os.path.isfile(os.path.join(stubs, "tbproxy/v1/tbproxy_pb2_grpc.py")),
              "the README's commands made no stubs")
        script = os.path.join(root, "examples/python/quickstart.py")
        env = dict(os.environ, PYTHONPATH=stubs)
        env.pop("TBPROXY_ADDRESS", None)
        ids.append(check_balances("quickstart.py <address>", subprocess.run(
            ["/usr/bin/python3", script, address], env=env, capture_output=True, text=True,
            timeout=TIMEOUT)))
        ids.append(check_balances("TBPROXY_ADDRESS quickstart.py", subprocess.run(
            ["/usr/bin/python3", script], env=dict(env, TBPROXY_ADDRESS=address),
            capture_output=True, text=True, timeout=TIMEOUT)))
        check_failure_report("quickstart.py", subprocess.run(
            ["/usr/bin/python3", script, nothing], env=env, capture_output=True, text=True,
            timeout=TIMEOUT))
    if node:
        script = os.path.join(root, "examples/node/quickstart.js")
        env = dict(os.environ, NODE_PATH=os.path.join(root, "tests/node/node_modules"))
        env.pop("TBPROXY_ADDRESS", None)
        ids.append(check_balances("quickstart.js <address>", subprocess.run(
            [node, script, address], env=env, capture_output=True, text=True, timeout=TIMEOUT)))
        ids.append(check_balances("TBPROXY_ADDRESS quickstart.js", subprocess.run(
            [node, script], env=dict(env, TBPROXY_ADDRESS=address), capture_output=True,
            text=True, timeout=TIMEOUT)))
        check_failure_report("quickstart.js", subprocess.run(
            [node, script, nothing], env=env, capture_output=True, text=True, timeout=TIMEOUT))
    # Every run used fresh random ids.
    ran = [s for s in ids if s is not None]
    check(len(set().union(*ran)) == 2 * len(ran), "ids repeated across runs")


# ---- README ---------------------------------------------------------------------------------

def fenced_blocks(text):
    blocks, current = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def check_readme_examples(root, readme):
    blocks = fenced_blocks(readme)
    for relative in ("examples/python/quickstart.py", "examples/node/quickstart.js"):
        with open(os.path.join(root, relative)) as f:
            source = f.read()
        check(source in blocks, "README.md has no fenced block equal to %s" % relative)
    for command in (STUB_COMMANDS, PYTHON_RUN, NODE_RUN):
        check(any(command in block for block in blocks), "README.md lacks `%s`" % command)


def help_flags(binary):
    """{flag: help text} for the flags tbproxy defines in proxy/app/config.cc.

    `--helpfull` prints, per source file, "    --name (help); default: ;", wrapped onto lines
    indented by six spaces.
    """
    text = subprocess.run([binary, "--helpfull"], capture_output=True, text=True,
                          timeout=TIMEOUT).stdout
    entries, in_config = [], False
    for line in text.splitlines():
        if line.startswith("  Flags from "):
            in_config = line.rstrip().endswith("proxy/app/config.cc:")
        elif in_config and line.startswith("    --"):
            entries.append(line.strip())
        elif in_config and line.startswith("      ") and entries:
            entries[-1] += " " + line.strip()
    flags = {}
    for entry in entries:
        match = re.match(r"^--(\w+) \((.*)\); default: .*;$", entry)
        if check(match is not None, "unexpected --helpfull entry %r" % entry):
            flags[match.group(1).replace("_", "-")] = match.group(2)
    return flags


def check_config_table(binary, readme):
    flags = help_flags(binary)
    if not check(len(flags) >= 20, "tbproxy --helpfull listed %d config flags" % len(flags)):
        return
    rows = {}
    for line in readme.splitlines():
        match = re.match(r"^\| `--([a-z0-9-]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    for flag, text in flags.items():
        row = rows.get(flag)
        if not check(row is not None, "README configuration table lacks --%s" % flag):
            continue
        variable = "TBPROXY_" + flag.upper().replace("-", "_")
        check("`%s`" % variable in row, "README row of --%s lacks `%s`" % (flag, variable))
        default = re.search(r"Default ([^ ]+?)\.(?: |$)", text)
        if default:
            check("`%s`" % default.group(1) in row,
                  "README row of --%s lacks its default `%s`" % (flag, default.group(1)))
        elif "Empty: off" in text:
            check("off" in row, "README row of --%s does not say it is off by default" % flag)
    for flag in rows:
        check(flag in flags, "README configuration table lists --%s, which tbproxy lacks" % flag)


def section(readme, title):
    """The text of the README section "## <title>", up to the next "## " heading."""
    match = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), readme, re.S | re.M)
    return match.group(1) if match else ""


def check_dependencies(root, readme):
    """Every package scripts/install-deps.sh or tests/node/package.json installs is explained."""
    text = section(readme, "Dependencies")
    with open(os.path.join(root, "scripts/install-deps.sh")) as f:
        script = f.read()
    listed = re.search(r"^packages=\((.*?)^\)", script, re.S | re.M)
    if not check(listed is not None, "no packages=( ... ) in scripts/install-deps.sh"):
        return
    debian = [word for line in listed.group(1).splitlines()
              for word in line.split("#")[0].split()]
    debian += re.findall(r"missing\+=\(([a-z0-9.+-]+)\)", script)  # nodejs, npm when absent.
    with open(os.path.join(root, "tests/node/package.json")) as f:
        npm = list(json.load(f).get("dependencies", {}))
    check(len(debian) >= 20 and npm, "found %d Debian and %d npm packages" % (len(debian), len(npm)))
    for package in debian + npm:
        check("`%s`" % package in text, "README Dependencies does not explain `%s`" % package)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, root = sys.argv[1], sys.argv[2]
    node = ""
    for argument in sys.argv[3:]:
        if argument.startswith("--node="):
            node = argument[len("--node="):]
    # CMake passes NODE_PROGRAM-NOTFOUND when Node.js is missing.
    if not (os.path.isfile(node) and
            os.path.isdir(os.path.join(root, "tests/node/node_modules/@grpc/grpc-js"))):
        node = ""
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()

    check_readme_examples(root, readme)
    check_config_table(binary, readme)
    check_dependencies(root, readme)
    process, port = start_proxy(binary)
    try:
        run_examples(root, port, node)
    finally:
        stop_proxy(process)

    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    if not node:
        print("passed, but Node.js or tests/node/node_modules is missing: quickstart.js not run")
        return SKIPPED
    print("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
