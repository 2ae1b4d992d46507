#!/usr/bin/env python3
"""The import graph of the top-level modules of src/, and its cycles.

Follows the module tree from src/lib.rs (`mod x;` → x.rs or x/mod.rs), leaves out
everything under `#[cfg(test)]` (inline `mod tests { … }`, `mod tests;` files, single
items), comments and string literals, and counts an edge A → B for every `crate::B`
path (in `use` lines and inline), `crate::{B, …}` groups and `super::` chains that
reach the crate root, in a file below top-level module A.

Prints the edges (with one place each comes from) and then either the layers, bottom
first, or every cycle. Exits 1 when there is a cycle, 2 on a tree it cannot read.

    .ci/module-graph.py            # summary
    .ci/module-graph.py --where    # every place an edge comes from
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """The text with comments, strings and char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)

    def blank(s):
        return "".join("\n" if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 260]) and (i == 0 or not re.match(r"[A-Za-z0-9_]", text[i - 1])):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(blank(text[i:j]))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not re.match(r"[A-Za-z0-9_]", text[i - 1]))):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i:j + 1]))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:i + 16], re.S)
            if m:
                out.append(blank(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching(text, i, open_, close):
    """Index after the `close` that matches the `open_` at i."""
    depth = 0
    while i < len(text):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def item_end(text, i):
    """End of the item starting at i: after its `;` or its matching `}`."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == ";" and depth == 0:
            return i + 1
        elif c == "{" and depth == 0:
            return matching(text, i, "{", "}")
        i += 1
    return i


def drop_test_items(text):
    """Blanks every item under #[cfg(test)]; returns (text, names of test-only `mod x;`)."""
    skipped = []
    for m in reversed(list(re.finditer(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]", text))):
        start = m.end()
        # Further attributes of the same item.
        while True:
            a = re.match(r"\s*#\s*\[", text[start:])
            if not a:
                break
            start = matching(text, start + a.end() - 1, "[", "]")
        end = item_end(text, start)
        mm = re.match(r"\s*(pub(\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text[start:end])
        if mm:
            skipped.append(mm.group(3))
        text = text[:m.start()] + "".join("\n" if c == "\n" else " " for c in text[m.start():end]) + text[end:]
    return text, skipped


def references(text, modpath):
    """(top-level module, offset) for each path in `text` that leaves through the crate root."""
    refs = []
    for m in re.finditer(r"(?<![A-Za-z0-9_$])crate\s*::\s*(\{|" + IDENT + ")", text):
        if m.group(1) == "{":
            end = matching(text, m.end() - 1, "{", "}")
            inner, depth, part = text[m.end():end - 1], 0, ""
            parts = []
            for ch in inner:
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                if ch == "," and depth == 0:
                    parts.append(part)
                    part = ""
                else:
                    part += ch
            parts.append(part)
            for p in parts:
                h = re.match(r"\s*(" + IDENT + ")", p)
                if h and h.group(1) != "self":
                    refs.append((h.group(1), m.start()))
        else:
            refs.append((m.group(1), m.start()))
    for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:super\s*::\s*)+)(" + IDENT + ")", text):
        ups = m.group(1).count("super")
        if ups <= len(modpath):
            base = modpath[:len(modpath) - ups]
            refs.append(((base + [m.group(2)])[0], m.start()))
    return refs


def walk(path, modpath, children_dir, files):
    try:
        raw = open(path, encoding="utf-8").read()
    except OSError as e:
        print(f"module-graph: cannot read {path}: {e}", file=sys.stderr)
        sys.exit(2)
    text, test_mods = drop_test_items(strip(raw))
    files.append((path, modpath, text))
    for m in re.finditer(r"(?:#\s*\[\s*path\s*=\s*\"([^\"]+)\"\s*\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text):
        name = m.group(2)
        if name in test_mods:
            continue
        cands = [os.path.join(children_dir, name + ".rs"), os.path.join(children_dir, name, "mod.rs")]
        child = next((c for c in cands if os.path.exists(c)), None)
        if child is None:
            print(f"module-graph: {path}: no file for `mod {name};`", file=sys.stderr)
            sys.exit(2)
        sub_dir = os.path.dirname(child) if child.endswith("mod.rs") else os.path.join(children_dir, name)
        walk(child, modpath + [name], sub_dir, files)


def sccs(nodes, edges):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def a_cycle(comp, edges):
    """One shortest cycle through the first member of a component."""
    start = comp[0]
    members = set(comp)
    prev, frontier, seen = {}, [start], {start}
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start] + list(reversed(path[:-1])) + [start] if len(path) > 1 else [start, v, start]
                if w not in seen:
                    seen.add(w)
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def main():
    show_where = "--where" in sys.argv
    files = []
    walk(os.path.join(ROOT, "lib.rs"), [], ROOT, files)
    tops = sorted({mp[0] for _, mp, _ in files if mp})
    edges, where = {}, {}
    for path, modpath, text in files:
        if not modpath:
            continue
        src = modpath[0]
        for dst, off in references(text, modpath):
            if dst == src or dst not in tops:
                continue
            edges.setdefault(src, set()).add(dst)
            line = text.count("\n", 0, off) + 1
            where.setdefault((src, dst), []).append(f"{os.path.relpath(path, os.path.join(ROOT, '..'))}:{line}")
    print(f"{len(tops)} top-level modules, {sum(len(v) for v in edges.values())} edges (test code left out)")
    for src in tops:
        dsts = sorted(edges.get(src, ()))
        print(f"  {src:<9} -> {', '.join(dsts) if dsts else '(nothing)'}")
        if show_where:
            for d in dsts:
                for w in where[(src, d)]:
                    print(f"      {d}: {w}")
    cyclic = [c for c in sccs(tops, edges) if len(c) > 1]
    if not cyclic:
        # Layers: a module's layer is one above the highest layer it imports.
        layer = {}

        def depth(v):
            if v not in layer:
                layer[v] = 1 + max((depth(w) for w in edges.get(v, ())), default=-1)
            return layer[v]

        for v in tops:
            depth(v)
        print("no cycle; layers, bottom first:")
        for k in range(max(layer.values()) + 1):
            print(f"  {k}: {' '.join(sorted(v for v in tops if layer[v] == k))}")
        return 0
    for comp in cyclic:
        cyc = a_cycle(comp, edges)
        print(f"CYCLE among {len(comp)} modules: {' '.join(comp)}")
        print(f"  e.g. {' -> '.join(cyc)}")
        for a, b in zip(cyc, cyc[1:]):
            print(f"      {a} -> {b}: {where[(a, b)][0]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
