#!/usr/bin/env python3
"""Renders a Helm chart the way `helm template` does, for the subset of Go templates and Sprig
functions our chart uses (Helm itself is not installable from Debian bookworm).

    render_chart.py helm/tbproxy [-f extra-values.yaml]... [--set path.to.key=value]...

Prints every rendered manifest with a `# Source:` line, as Helm does, or `Error: <message>` and
exit status 1 when a template calls `fail` or uses something this renderer does not know. An
unknown function or syntax is an error, never silently empty output, so the chart cannot drift
outside what is checked here.

Supported: text/actions with {{- -}} trimming and {{/* comments */}}; if / else if / else,
with / else, range (lists and maps, with $i, $v :=), define, include, variables ($x :=, $x =, $);
field chains (.Values.a.b, $.Chart.Name, $var.field); pipelines and parenthesised pipelines;
string, raw-string, integer, true/false/nil literals. Functions: add sub mul int default quote
indent nindent toYaml trunc trimSuffix contains join printf print include fail sha256sum eq ne
lt le gt ge and or not, and .Files.Get.
"""
import argparse
import copy
import hashlib
import json
import pathlib
import re
import sys

import yaml


class RenderError(Exception):
    pass


# ---- Lexing -------------------------------------------------------------------------------------

def lex(source, name):
    """Splits a template into ('text', str) and ('action', str) items, applying trim markers."""
    items = []
    position = 0
    trim_next = False
    while True:
        start = source.find("{{", position)
        if start < 0:
            text = source[position:]
            items.append(("text", text.lstrip() if trim_next else text))
            return items
        text = source[position:start]
        inner_start = start + 2
        trim_left = source.startswith("- ", inner_start) or source.startswith("-\n", inner_start)
        if trim_left:
            text = text.rstrip()
            inner_start += 1
        if trim_next:
            text = text.lstrip()
        items.append(("text", text))
        end = find_action_end(source, inner_start, name)
        inner = source[inner_start:end]
        trim_next = inner.endswith(" -") or inner.endswith("\n-")
        if trim_next:
            inner = inner[:-1]
        inner = inner.strip()
        if not (inner.startswith("/*") and inner.endswith("*/")):
            items.append(("action", inner))
        position = end + 2


def find_action_end(source, position, name):
    quote = None
    while position < len(source) - 1:
        c = source[position]
        if quote:
            if c == "\\" and quote == '"':
                position += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"`":
            quote = c
        elif source.startswith("/*", position):
            close = source.find("*/", position)
            if close < 0:
                raise RenderError(f"{name}: unclosed comment")
            position = close + 2
            continue
        elif source.startswith("}}", position):
            return position
        position += 1
    raise RenderError(f"{name}: unclosed action")


TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<number>-?\d+)
  | (?P<punct>:=|=|\||\(|\)|,)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<space>\s+)
""", re.VERBOSE)


def tokenize(text, name):
    tokens = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            raise RenderError(f"{name}: cannot parse {text[position:]!r} in {{{{ {text} }}}}")
        kind = match.lastgroup
        if kind != "space":
            tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


# ---- Parsing ------------------------------------------------------------------------------------

KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block"}


class Parser:
    def __init__(self, items, name, defines):
        self.items = items
        self.index = 0
        self.name = name
        self.defines = defines

    def parse_body(self, stops):
        """Parses until an action whose first word is in `stops`; returns (nodes, stop tokens)."""
        nodes = []
        while self.index < len(self.items):
            kind, value = self.items[self.index]
            self.index += 1
            if kind == "text":
                if value:
                    nodes.append(("text", value))
                continue
            tokens = tokenize(value, self.name)
            if not tokens:
                raise RenderError(f"{self.name}: empty action")
            head = tokens[0][1] if tokens[0][0] == "ident" else None
            if head in stops:
                return nodes, tokens
            if head == "if":
                nodes.append(self.parse_if(tokens[1:]))
            elif head == "with":
                body, stop = self.parse_body({"else", "end"})
                other = self.parse_else(stop)
                nodes.append(("with", self.parse_pipeline(tokens[1:]), body, other))
            elif head == "range":
                body, stop = self.parse_body({"else", "end"})
                other = self.parse_else(stop)
                nodes.append(("range", self.parse_pipeline(tokens[1:]), body, other))
            elif head == "define":
                if len(tokens) != 2 or tokens[1][0] != "string":
                    raise RenderError(f"{self.name}: define needs a name")
                body, _ = self.parse_body({"end"})
                self.defines[json.loads(tokens[1][1])] = body
            elif head in KEYWORDS:
                raise RenderError(f"{self.name}: unexpected {{{{ {value} }}}}")
            else:
                nodes.append(("action", self.parse_pipeline(tokens)))
        if stops:
            raise RenderError(f"{self.name}: missing {{{{ end }}}}")
        return nodes, None

    def parse_if(self, condition):
        branches = []
        body, stop = self.parse_body({"else", "end"})
        branches.append((self.parse_pipeline(condition), body))
        while stop[0][1] == "else" and len(stop) > 1 and stop[1] == ("ident", "if"):
            body, next_stop = self.parse_body({"else", "end"})
            branches.append((self.parse_pipeline(stop[2:]), body))
            stop = next_stop
        other = self.parse_else(stop)
        return ("if", branches, other)

    def parse_else(self, stop):
        if stop[0][1] == "end":
            return []
        if len(stop) != 1:
            raise RenderError(f"{self.name}: unsupported else form")
        body, end = self.parse_body({"end"})
        return body

    def parse_pipeline(self, tokens):
        declare = []
        operator = None
        for position, token in enumerate(tokens):
            if token in (("punct", ":="), ("punct", "=")):
                names = [t[1] for t in tokens[:position] if t[0] == "variable"]
                if not names or any(t[0] not in ("variable", "punct") for t in tokens[:position]):
                    raise RenderError(f"{self.name}: bad declaration")
                declare, operator, tokens = names, token[1], tokens[position + 1:]
                break
        commands, rest = self.parse_commands(tokens)
        if rest:
            raise RenderError(f"{self.name}: unexpected {rest[0][1]!r}")
        return {"declare": declare, "operator": operator, "commands": commands}

    def parse_commands(self, tokens):
        commands = [[]]
        while tokens:
            token = tokens[0]
            if token == ("punct", ")"):
                break
            tokens = tokens[1:]
            if token == ("punct", "|"):
                commands.append([])
            elif token == ("punct", "("):
                inner, tokens = self.parse_commands(tokens)
                if not tokens or tokens[0] != ("punct", ")"):
                    raise RenderError(f"{self.name}: unbalanced parenthesis")
                tokens = tokens[1:]
                commands[-1].append(("pipeline", {"declare": [], "operator": None,
                                                  "commands": inner}))
            else:
                commands[-1].append(token)
        if any(not command for command in commands):
            raise RenderError(f"{self.name}: empty command in pipeline")
        return commands, tokens


# ---- Evaluation ---------------------------------------------------------------------------------

def truth(value):
    """Go templates' notion of true: not nil, false, zero, or an empty string, list or map."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


def to_text(value):
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        raise RenderError(f"printing a {type(value).__name__} directly; use toYaml")
    return str(value)


def to_int(value):
    if value is None or value == "":
        return 0
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise RenderError(f"int: cannot convert {value!r}")


def go_printf(form, *args):
    if form.count("%") - 2 * form.count("%%") != len(args):
        raise RenderError(f"printf: {form!r} does not match {len(args)} arguments")
    converted = []
    for spec, arg in zip(re.findall(r"%[-+ #0-9.]*[a-zA-Z]", form.replace("%%", "")), args):
        verb = spec[-1]
        if verb == "d":
            converted.append(to_int(arg))
        elif verb in "sv":
            converted.append(to_text(arg))
        elif verb == "q":
            converted.append(json.dumps(to_text(arg)))
        else:
            raise RenderError(f"printf: unsupported verb {spec}")
    return re.sub(r"%[-+ #0-9.]*[vq]", "%s", form) % tuple(converted)


def go_print(*args):
    out = ""
    for index, arg in enumerate(args):
        if index and not isinstance(arg, str) and not isinstance(args[index - 1], str):
            out += " "
        out += to_text(arg)
    return out


def to_yaml(value):
    if value is None:
        return "null"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def indent(width, text):
    pad = " " * to_int(width)
    return "\n".join(pad + line for line in to_text(text).split("\n"))


def compare(name, a, b):
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        pass
    elif type(a) is not type(b):
        raise RenderError(f"{name}: incompatible types for comparison ({a!r}, {b!r})")
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[name]


def fail(message):
    raise RenderError(to_text(message))


FUNCTIONS = {
    "add": lambda *a: sum(to_int(x) for x in a),
    "sub": lambda a, b: to_int(a) - to_int(b),
    "mul": lambda *a: __import__("math").prod(to_int(x) for x in a),
    "int": to_int,
    "default": lambda fallback, value=None: value if truth(value) else fallback,
    "quote": lambda *a: " ".join(json.dumps(to_text(x)) for x in a),
    "indent": indent,
    "nindent": lambda width, text: "\n" + indent(width, text),
    "toYaml": to_yaml,
    "trunc": lambda n, s: to_text(s)[:to_int(n)],
    "trimSuffix": lambda suffix, s: s[:-len(suffix)] if suffix and s.endswith(suffix) else s,
    "contains": lambda needle, haystack: to_text(needle) in to_text(haystack),
    "join": lambda separator, items: separator.join(to_text(x) for x in (items or [])),
    "printf": go_printf,
    "print": go_print,
    "fail": fail,
    "sha256sum": lambda s: hashlib.sha256(to_text(s).encode()).hexdigest(),
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: compare("lt", a, b),
    "le": lambda a, b: compare("le", a, b),
    "gt": lambda a, b: compare("gt", a, b),
    "ge": lambda a, b: compare("ge", a, b),
    "not": lambda a: not truth(a),
}


class Renderer:
    def __init__(self, defines, templates, root):
        self.defines = defines
        self.templates = templates  # name -> nodes, for include of a whole file
        self.root = root
        self.depth = 0

    def render(self, nodes, dot, scope):
        out = []
        scope = [dict()] + scope
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                value = self.pipeline(node[1], dot, scope)
                if not node[1]["declare"]:
                    out.append(to_text(value))
            elif kind == "if":
                for condition, body in node[1]:
                    if truth(self.pipeline(condition, dot, scope)):
                        out.append(self.render(body, dot, scope))
                        break
                else:
                    out.append(self.render(node[2], dot, scope))
            elif kind == "with":
                value = self.pipeline(node[1], dot, scope, declare=False)
                inner = [dict()] + scope
                self.declare(node[1], [value], inner)
                out.append(self.render(node[2], value, inner) if truth(value)
                           else self.render(node[3], dot, scope))
            elif kind == "range":
                out.append(self.range(node, dot, scope))
        return "".join(out)

    def range(self, node, dot, scope):
        value = self.pipeline(node[1], dot, scope, declare=False)
        if not truth(value):
            return self.render(node[3], dot, scope)
        if isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            pairs = list(enumerate(value))
        else:
            raise RenderError(f"range over {type(value).__name__}")
        out = []
        for key, item in pairs:
            inner = [dict()] + scope
            names = node[1]["declare"]
            if len(names) == 1:
                inner[0][names[0]] = item
            elif len(names) == 2:
                inner[0][names[0]], inner[0][names[1]] = key, item
            out.append(self.render(node[2], item, inner))
        return "".join(out)

    def declare(self, pipeline, values, scope):
        for name, value in zip(pipeline["declare"], values):
            if pipeline["operator"] == "=":
                for frame in scope:
                    if name in frame:
                        frame[name] = value
                        break
                else:
                    raise RenderError(f"assignment to undeclared {name}")
            else:
                scope[0][name] = value

    def pipeline(self, pipeline, dot, scope, declare=True):
        value = None
        for index, command in enumerate(pipeline["commands"]):
            value = self.command(command, dot, scope, piped=index > 0, piped_value=value)
        if declare and pipeline["declare"]:
            self.declare(pipeline, [value], scope)
        return value

    def command(self, command, dot, scope, piped, piped_value):
        head = command[0]
        args = [self.operand(token, dot, scope) for token in command[1:]]
        if piped:
            args.append(piped_value)
        if head[0] == "ident" and head[1] not in ("true", "false", "nil"):
            name = head[1]
            if name == "include":
                return self.include(*args)
            if name in ("and", "or"):
                return self.logic(name, args)
            if name not in FUNCTIONS:
                raise RenderError(f"function {name!r} not supported by render_chart.py")
            try:
                return FUNCTIONS[name](*args)
            except TypeError as error:
                raise RenderError(f"{name}: {error}")
        value = self.operand(head, dot, scope)
        if callable(value):
            return value(*args)
        if args:
            raise RenderError(f"{head[1]!r} is not a function")
        return value

    @staticmethod
    def logic(name, args):
        for arg in args:
            if (name == "and") != truth(arg):
                return arg
        return args[-1]

    def include(self, name, dot):
        self.depth += 1
        if self.depth > 50:
            raise RenderError("include nested too deeply")
        try:
            if name in self.defines:
                return self.render(self.defines[name], dot, [{"$": dot}])
            if name in self.templates:
                return self.render(self.templates[name], dot, [{"$": dot}])
            raise RenderError(f"include: no template {name!r}")
        finally:
            self.depth -= 1

    def operand(self, token, dot, scope):
        kind, text = token
        if kind == "string":
            return json.loads(text)
        if kind == "raw":
            return text[1:-1]
        if kind == "number":
            return int(text)
        if kind == "pipeline":
            return self.pipeline(text, dot, scope, declare=False)
        if kind == "ident":
            return {"true": True, "false": False, "nil": None}.get(text) if text in (
                "true", "false", "nil") else FUNCTIONS.get(text) or self.fail_ident(text)
        if kind == "field":
            return fields(dot, text[1:].split(".") if text != "." else [])
        if kind == "variable":
            name, _, chain = text.partition(".")
            for frame in scope:
                if name in frame:
                    return fields(frame[name], chain.split(".") if chain else [])
            if name == "$":
                return fields(self.root, chain.split(".") if chain else [])
            raise RenderError(f"undefined variable {name}")
        raise RenderError(f"unexpected {text!r}")

    @staticmethod
    def fail_ident(text):
        raise RenderError(f"function {text!r} not supported by render_chart.py")


def fields(value, chain):
    for name in chain:
        if isinstance(value, dict):
            value = value.get(name)
        elif value is None:
            return None
        else:
            raise RenderError(f"cannot read field {name} of {type(value).__name__}")
    return value


# ---- Chart --------------------------------------------------------------------------------------

def merge(base, override):
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def apply_set(values, assignment):
    path, _, raw = assignment.partition("=")
    target = values
    keys = path.split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = yaml.safe_load(raw) if raw else ""


def render_chart(chart_dir, value_files=(), sets=(), release="tbproxy", namespace="default"):
    """Returns [(template path, rendered text)] for every non-empty manifest, or raises."""
    chart_dir = pathlib.Path(chart_dir)
    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    values = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    for path in value_files:
        merge(values, yaml.safe_load(pathlib.Path(path).read_text()) or {})
    for assignment in sets:
        apply_set(values, assignment)

    def files_get(name):
        path = (chart_dir / name).resolve()
        if chart_dir.resolve() not in path.parents or not path.is_file():
            return ""
        return path.read_text()

    base_path = f"{chart['name']}/templates"
    root = {
        "Values": values,
        "Chart": {"Name": chart["name"], "Version": chart["version"],
                  "AppVersion": chart.get("appVersion", "")},
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm",
                    "IsInstall": True, "IsUpgrade": False},
        "Files": {"Get": files_get},
        "Capabilities": {},
    }
    defines = {}
    templates = {}
    for path in sorted((chart_dir / "templates").rglob("*")):
        if not path.is_file():
            continue
        name = f"{base_path}/{path.relative_to(chart_dir / 'templates').as_posix()}"
        nodes, _ = Parser(lex(path.read_text(), name), name, defines).parse_body(set())
        templates[name] = nodes
    rendered = []
    for name, nodes in templates.items():
        if pathlib.PurePosixPath(name).name.startswith("_"):
            continue
        context = dict(root, Template={"Name": name, "BasePath": base_path})
        renderer = Renderer(defines, templates, context)
        try:
            text = renderer.render(nodes, context, [{"$": context}])
        except RenderError as error:
            raise RenderError(f"execution error at ({name}): {error}") from None
        if text.strip():
            rendered.append((name, text))
    return rendered


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chart")
    parser.add_argument("-f", "--values", action="append", default=[])
    parser.add_argument("--set", action="append", default=[])
    arguments = parser.parse_args()
    try:
        for name, text in render_chart(arguments.chart, arguments.values, arguments.set):
            if name.endswith("/NOTES.txt"):
                continue  # Helm shows the notes after installing, not as a manifest.
            print(f"---\n# Source: {name}\n{text.strip()}")
    except RenderError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
