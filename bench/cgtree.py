#!/usr/bin/python3
"""Where a function's instructions go: the call tree under ROOT in a callgrind.out file.

    bench/cgtree.py [--root msa_check_authn] [--requests N] [--top 15] [--root-only] FILE
    bench/cgtree.py --sum F1,F2,... FILE    the summed inclusive Ir of F1, F2, ...

Reads the callgrind format itself (callgrind_annotate lists callers as well as
callees in its inclusive view, and with --toggle-collect it books the frames
below the toggle as self cost). The tree is every function reachable from ROOT
through recorded calls; functions are keyed by (object, name), whatever file
their inlined pieces come from. Prints, per request (Ir / N):
  - ROOT's inclusive Ir,
  - the top functions of the tree by inclusive Ir (self + calls made from it),
  - the top functions by self Ir, with the caller that spent most in an
    anonymous (address-only) function, so libcrypto's stripped internals get a
    name to go by,
  - self Ir summed per shared object.
Recursive calls count once (a function's calls to itself are not added to it).
"""
import argparse
import collections
import os
import re
import sys


def parse(path):
    names = {"ob": {}, "fn": {}}
    self_cost = collections.Counter()
    call_cost = collections.Counter()  # (caller, callee) -> Ir spent in those calls
    call_count = collections.Counter()
    ob = fn = cob = cfn = None
    pending = None
    totals = None

    def name(kind, v):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", v)
        if not m:
            return v
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), "?")

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line[0] == "#":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending is not None:
                    key = ((ob, fn), (cob or ob, cfn))
                    call_cost[key] += cost
                    call_count[key] += pending
                    pending = None
                    cob = None
                else:
                    self_cost[(ob, fn)] += cost
                continue
            if line.startswith("totals:"):
                totals = int(line.split(":", 1)[1])
                continue
            key, _, v = line.partition("=")
            if key == "ob":
                ob = name("ob", v)
            elif key == "fn":
                fn = name("fn", v)
                cob = None
            elif key == "cob":
                cob = name("ob", v)
            elif key == "cfn":
                cfn = name("fn", v)
            elif key == "calls":
                pending = int(v.split()[0])
    if totals is None:
        totals = sum(self_cost.values())
    return self_cost, call_cost, call_count, totals


def tree(path, root, parsed=None):
    self_cost, call_cost, call_count, totals = parsed or parse(path)
    edges = collections.defaultdict(set)
    for (a, b), n in call_count.items():
        if n > 0:
            edges[a].add(b)
    roots = {k for k in set(self_cost) | {a for a, _ in call_cost} if k[1] == root}
    seen, todo = set(roots), list(roots)
    while todo:
        for b in edges[todo.pop()]:
            if b not in seen:
                seen.add(b)
                todo.append(b)
    incl = collections.Counter({k: self_cost[k] for k in seen})
    callers = collections.defaultdict(collections.Counter)
    for (a, b), cost in call_cost.items():
        if a in seen and a != b:
            incl[a] += cost
            if b in seen:
                callers[b][a] += cost
    return roots, {k: self_cost[k] for k in seen}, incl, callers, totals


def short_lib(ob):
    return re.sub(r"\.so[.\d]*$", "", os.path.basename(ob or "?"))


def anonymous(k):
    return re.match(r"0x[0-9a-f]+$", k[1] or "") is not None


def short_name(k):
    if anonymous(k):
        return "%s:%s" % (short_lib(k[0]), k[1][2:].lstrip("0") or "0")
    return k[1]


def label(k, callers):
    """An anonymous function goes by the named caller that spent most in it."""
    name = short_name(k)
    if anonymous(k):
        seen, c = {k}, k
        while callers[c]:
            c = callers[c].most_common(1)[0][0]
            if c in seen:
                break
            seen.add(c)
            if not anonymous(c):
                break
        if c != k:
            name += " (in %s)" % short_name(c)
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--root", default="msa_check_authn")
    ap.add_argument("--requests", type=int, default=1)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--root-only", action="store_true", help="print ROOT's inclusive Ir only")
    ap.add_argument("--sum", metavar="F1,F2,...",
                    help="print the sum of the inclusive Ir of these functions (those present)")
    a = ap.parse_args()
    if a.sum:
        parsed = parse(a.file)
        total = 0
        for f in a.sum.split(","):
            roots, _, incl, _, _ = tree(a.file, f, parsed)
            total += sum(incl[k] for k in roots)
        print(total)
        return
    roots, self_cost, incl, callers, totals = tree(a.file, a.root)
    if not roots:
        sys.exit("%s: no function %s" % (a.file, a.root))
    root_incl = sum(incl[k] for k in roots)
    if a.root_only:
        print(root_incl)
        return
    n = a.requests

    def table(title, costs):
        print(title)
        print("  %9s %6s  %-60s %s" % ("Ir/req", "%root", "function", "object"))
        ranked = sorted(costs.items(), key=lambda kv: -kv[1])
        for k, ir in ranked[:a.top]:
            print("  %9.0f %5.1f%%  %-60s %s" % (ir / n, 100.0 * ir / root_incl,
                                                 label(k, callers)[:60], short_lib(k[0])))

    print("%s inclusive: %.0f Ir per request (%d requests, %d Ir in the file)"
          % (a.root, root_incl / n, n, totals))
    print()
    table("top %d under %s by inclusive Ir (itself excluded):" % (a.top, a.root),
          {k: v for k, v in incl.items() if k not in roots})
    print()
    table("top %d under %s by self Ir:" % (a.top, a.root), self_cost)
    print()
    libs = collections.Counter()
    for k, ir in self_cost.items():
        libs[short_lib(k[0])] += ir
    print("self Ir under %s by object:" % a.root)
    for lib, ir in libs.most_common():
        if ir / n >= 1:
            print("  %9.0f %5.1f%%  %s" % (ir / n, 100.0 * ir / root_incl, lib))


if __name__ == "__main__":
    main()
