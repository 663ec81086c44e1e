"""What handoff's Rust sources declare, read the way deploy/kubernetes/check.py needs it: the
paths the processors serve (string literals of src/serve.rs), the routes of the inbox's axum
router (src/inbox/web.rs), and the keys and enum values of the settings (src/config), which
handoff checks strictly at start-up. A few regular expressions, not a Rust parser: enough for
the way these files are written, and test_check.py breaks copies of them to keep it so.
"""

from __future__ import annotations

import pathlib
import re


def code(text: str) -> str:
    """`text` without its // comments (a // after a non-blank, as in "http://", stays)."""
    return re.sub(r"(^|\s)//.*$", r"\1", text, flags=re.MULTILINE)


def _balanced(text: str, start: int) -> int:
    """The index just past the bracket closing the one opened before `start`."""
    depth, i, in_str = 1, start, False
    while i < len(text) and depth:
        c = text[i]
        if in_str:
            i += c == "\\"
            in_str = c != '"'
        else:
            in_str = c == '"'
            depth += (c in "([{") - (c in ")]}")
        i += 1
    return i


def rust_str_consts(sources: list[pathlib.Path]) -> dict[str, str]:
    """`const NAME: &str = "...";` of the sources."""
    pattern = r"\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:'static\s+)?str\s*=\s*\"([^\"]*)\"\s*;"
    return {k: v for src in sources for k, v in re.findall(pattern, code(src.read_text()))}


def served_routes(sources: list[pathlib.Path]) -> dict[str, dict]:
    """Path-like string literals ("/healthz") of the processors' sources, as routes."""
    found = {p for src in sources for p in re.findall(r'"(/[A-Za-z0-9_\-./]*)"', code(src.read_text()))}
    return {p: {"methods": {"any"}, "ops": True} for p in found}


def router_routes(src: pathlib.Path, consts: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
    """The routes of an axum router, `.route(PATH, get(..).post(..))`, PATH a string literal or a
    const (`crate::serve::HEALTHZ_PATH`, from `consts`): ({path: {"methods", "ops": a path of
    serve::}}, [paths that did not resolve])."""
    text, routes, unresolved = code(src.read_text()), {}, []
    for m in re.finditer(r"\.route\(", text):
        inner = text[m.end(): _balanced(text, m.end()) - 1]
        depth, cut = 0, None
        for i, c in enumerate(inner):
            depth += (c in "([{") - (c in ")]}")
            if c == "," and depth == 0:
                cut = i
                break
        if cut is None:
            continue
        first = inner[:cut].strip()
        path = first.strip('"') if first.startswith('"') else consts.get(first.split("::")[-1].strip())
        if path is None:
            unresolved.append(first)
            continue
        entry = routes.setdefault(path, {"methods": set(), "ops": "serve::" in first})
        entry["methods"] |= set(re.findall(r"\b(get|post|put|delete|patch|head|options|any)\s*\(", inner[cut:]))
    return routes, unresolved


def rust_config_schema(sources: list[pathlib.Path]) -> tuple[dict, dict]:
    """{struct: {field: type}} of the `#[serde(deny_unknown_fields)]` structs (handoff refuses any
    other key in them), and {enum: [value, ...]} of the snake_case enums of unit variants."""
    structs, enums = {}, {}
    for src in sources:
        text = code(src.read_text())
        for m in re.finditer(r"((?:#\[[^\]]*\]\s*)*)pub\s+(struct|enum)\s+(\w+)\s*\{", text):
            attrs, kind, name = m.groups()
            body = text[m.end(): _balanced(text, m.end()) - 1]
            if kind == "struct" and "deny_unknown_fields" in attrs:
                structs[name] = dict(re.findall(r"^\s*pub\s+(\w+)\s*:\s*(.+?),\s*$", body, re.MULTILINE))
            elif kind == "enum" and 'rename_all = "snake_case"' in attrs:
                body = re.sub(r"#\[[^\]]*\]", "", body)
                variants = re.findall(r"^\s*([A-Z]\w*)\s*(?:,|$)", body, re.MULTILINE)
                if variants and not re.search(r"^\s*[A-Z]\w*\s*[({]", body, re.MULTILINE):
                    enums[name] = [re.sub(r"(?<!^)([A-Z])", r"_\1", v).lower() for v in variants]
    return structs, enums


def config_problems(value, struct: str, structs: dict, enums: dict, at: str = "") -> list[str]:
    """Keys of `value` (parsed settings) that `struct` does not declare, and unknown enum values."""
    fields, problems = structs.get(struct, {}), []
    for k, v in (value if isinstance(value, dict) else {}).items():
        where = f"{at}.{k}" if at else k
        if k not in fields:
            problems.append(f"{where}: unknown key (handoff refuses the file, exit 2; {struct} has: "
                            f"{', '.join(sorted(fields))})")
            continue
        t = fields[k].strip()
        while m := re.fullmatch(r"(?:Option|Vec|Box)\s*<(.+)>", t):
            t = m.group(1).strip()
        for i, item in enumerate(v) if isinstance(v, list) else [(None, v)]:
            here = where if i is None else f"{where}[{i}]"
            if t in structs:
                problems += config_problems(item, t, structs, enums, here)
            elif t in enums and isinstance(item, str) and item not in enums[t]:
                problems.append(f"{here}: {item!r} is not one of {', '.join(enums[t])}")
    return problems
