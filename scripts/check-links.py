#!/usr/bin/env python3
"""Fails on a dead relative link in the repository's Markdown: a link to a file that is not in the tree (or lies
outside it), or to a `#heading` that the target page does not have. Links with a scheme (https:, mailto:) are not
followed: the tests never leave 127.0.0.1.

Usage: scripts/check-links.py [FILE.md ...]   (default: every tracked .md file)
"""
import os
import re
import subprocess
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def anchors(path):
    """GitHub's heading slugs of one Markdown file: lower case, punctuation dropped, spaces to hyphens, repeats
    numbered."""
    seen = {}
    result = set()
    in_fence = False
    with open(path, encoding="utf-8") as file:
        for line in file:
            if FENCE.match(line):
                in_fence = not in_fence
                continue
            match = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not match:
                continue
            text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))
            slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path):
    """(line number, target) of every link outside code blocks and code spans."""
    in_fence = False
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if FENCE.match(line):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            for match in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
                yield number, match.group(1)


def main():
    files = sys.argv[1:] or subprocess.run(["git", "-C", ROOT, "ls-files", "*.md"], capture_output=True, text=True,
                                           check=True).stdout.split()
    problems = []
    for name in files:
        path = os.path.join(ROOT, name)
        for number, target in links(path):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            destination = os.path.realpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            where = f"{name}:{number}: {target}"
            if not destination.startswith(ROOT + os.sep) and destination != ROOT:
                problems.append(f"{where}: points outside the repository")
            elif not os.path.exists(destination):
                problems.append(f"{where}: no such file")
            elif anchor and destination.endswith(".md") and anchor not in anchors(destination):
                problems.append(f"{where}: no heading #{anchor} in {os.path.relpath(destination, ROOT)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(f"{len(problems)} dead link(s) in Markdown")


if __name__ == "__main__":
    main()
