#!/usr/bin/env python3
"""Lists the functions under src/ whose bodies are longer than a limit (default 60 lines).

For: keeping functions about 60 lines at most (BRIEF/STYLE: "functions about 60 lines at most,
data tables excepted"). It reads C++ as text with a brace-matching heuristic, not a compiler:
comments, string, character and raw-string literals and preprocessor lines are skipped; a `{`
opens a function body when, outside any function, the text before it (since the last `;`, `{` or
`}` of the same level, brace initialisers included) ends in `)` or in a qualifier after one
(`const`, `override`, `noexcept`, `final`, `mutable`, a trailing return type). Everything inside
a body (lambdas, local classes) counts towards it. Class and namespace bodies are walked into.

Allow-list: scripts/function-length-allow.txt, one `PATH NAME` a line (PATH relative to the
repository, NAME as this script prints it), `#` comments: data tables and code another room
owns. An allowed function that is no longer long is reported as stale.

Exit status: 0 when every long function is allowed, 1 otherwise (the list says which).
Deterministic and fast (pure text, well under a second for src/), so CTest runs it (label unit).
"""
import argparse
import pathlib
import re
import sys

QUALIFIERS = {"const", "override", "noexcept", "final", "mutable", "try", "volatile"}
SCOPES = re.compile(r"^(?:template\s*<.*>\s*)?(?:class|struct|union|namespace|enum|extern\s+\"C\")\b", re.S)
TRAILING_RETURN = re.compile(r"\)\s*(?:(?:const|noexcept|override|final|mutable)\s*)*->\s*[\w:<>,\s*&]+$", re.S)


def strip_code(text):
    """Returns `text` with comments, literals and preprocessor lines blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == "#" or (line_start and c in " \t" and text[i:].lstrip(" \t").startswith("#")):
            # a preprocessor directive, with its continuation lines
            while i < n:
                if text[i] == "\n" and (i == 0 or text[i - 1] != "\\"):
                    break
                out.append("\n" if text[i] == "\n" else " ")
                i += 1
            continue
        if c == "\n":
            out.append(c)
            line_start = True
            i += 1
            continue
        if c not in " \t":
            line_start = False
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                out.append(" ")
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join("\n" if ch == "\n" else " " for ch in text[i:end]))
            i = end
            continue
        m = re.match(r'R"([^(\s]*)\(', text[i:i + 20]) if c == "R" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) else None
        if m:
            close = ")" + m.group(1) + '"'
            end = text.find(close, i + m.end())
            end = n if end < 0 else end + len(close)
            out.append('""' + "".join("\n" if ch == "\n" else " " for ch in text[i + 2:end]))
            i = end
            continue
        if c == '"' or (c == "'" and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"))):
            # a string or character literal (a ' after an identifier character is a digit separator)
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * max(0, min(j, n) - i - 1) + c)
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def is_function_head(head):
    h = head.strip()
    if not h or SCOPES.match(h):
        return False
    if h.endswith(")"):
        return not re.match(r"^(?:if|for|while|switch|catch)\b", h)
    last = re.search(r"(\w+)$", h)
    if last and last.group(1) in QUALIFIERS and ")" in h:
        return True
    return bool(TRAILING_RETURN.search(h))


def function_name(head):
    h = " ".join(head.split())
    m = re.search(r"((?:[\w~]+::)*(?:operator\s*\S+?|~?\w+))\s*\(", h)
    return m.group(1).replace(" ", "") if m else h[-60:]


def long_functions(path, limit):
    code = strip_code(path.read_text(encoding="utf-8", errors="replace"))
    found = []
    # stack entries: kind ("scope", "func", "init", "block"), start line, name
    stack = []
    head = []
    line = 1
    in_func = 0
    for ch in code:
        if ch == "\n":
            line += 1
            head.append(" ")
            continue
        if ch == "{":
            h = "".join(head)
            stripped = h.strip()
            if in_func:
                stack.append(("block", line, ""))
                head = []
            elif is_function_head(h):
                stack.append(("func", line, function_name(h)))
                in_func += 1
                head = []
            elif SCOPES.match(stripped) or not stripped:
                stack.append(("scope", line, ""))
                head = []
            else:
                # a brace initialiser or a table at namespace/class level: its text stays in the head
                stack.append(("init", line, ""))
                head.append(ch)
            continue
        if ch == "}":
            if not stack:
                head = []
                continue
            kind, start, name = stack.pop()
            if kind == "func":
                in_func -= 1
                length = line - start + 1
                if length > limit:
                    found.append((start, name, length))
                head = []
            elif kind == "init":
                head.append(ch)
            else:
                head = []
            continue
        if ch == ";" and not in_func:
            if stack and stack[-1][0] == "init":
                head.append(ch)
            else:
                head = []
            continue
        if not in_func:
            head.append(ch)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parent.parent))
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--allow", default=None, help="allow-list file (default scripts/function-length-allow.txt)")
    ap.add_argument("--all", action="store_true", help="list allowed functions too")
    args = ap.parse_args()
    root = pathlib.Path(args.root)
    allow_path = pathlib.Path(args.allow) if args.allow else root / "scripts" / "function-length-allow.txt"
    allowed = set()
    if allow_path.exists():
        for raw in allow_path.read_text().splitlines():
            raw = raw.split("#", 1)[0].strip()
            if raw:
                p, _, name = raw.partition(" ")
                allowed.add((p, name.strip()))
    bad, seen = [], set()
    files = sorted(p for p in (root / "src").rglob("*") if p.suffix in (".cpp", ".hpp", ".h", ".cc"))
    for f in files:
        rel = f.relative_to(root).as_posix()
        for start, name, length in long_functions(f, args.limit):
            key = (rel, name)
            seen.add(key)
            if key in allowed:
                if args.all:
                    print(f"{rel}:{start}: {name}: {length} lines (allowed)")
                continue
            bad.append(f"{rel}:{start}: {name}: {length} lines")
    for line in bad:
        print(line)
    stale = sorted(allowed - seen)
    for p, name in stale:
        print(f"stale allow-list entry (no longer over {args.limit} lines): {p} {name}")
    if bad or stale:
        print(f"{len(bad)} function(s) over {args.limit} lines not in {allow_path.name}; {len(stale)} stale entr(y/ies)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
