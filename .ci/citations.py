#!/usr/bin/env python3
"""Every `§` citation in the crates resolves to a section of a document in this repository.

A citation names its document on the same line or in the comment lines just above it:
  "reference §N"                          -> docs/reference/moneyhub-api.md
  "lifecycle spec §N", "spec §N",
  "lifecycle §N", "lifecycle rules §N",
  "docs/spec/lifecycle.md §N"            -> docs/spec/lifecycle.md
  "RFC 6749 §N", "OIDC Core §N"           -> the public standard (not checked here)
A bare "§N" (or "§N and §M") takes the document named closest before it. Prints every
citation with its document and fails when a section number is not a heading of that document
or no document is named (DEVELOPERS.md, "Citations").
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = {
    "reference": ROOT / "docs/reference/moneyhub-api.md",
    "lifecycle": ROOT / "docs/spec/lifecycle.md",
}
NAMES = [
    (re.compile(r"\b(RFC ?\d+|OIDC Core|Core)\b"), "external"),
    (re.compile(r"moneyhub-api\.md|\breference\b"), "reference"),
    (re.compile(r"lifecycle\.md|\blifecycle\b|\bspec\b"), "lifecycle"),
]
SECTION = re.compile(r"§ ?(\d+(?:\.\d+)*)")


def headings(path):
    numbers = set()
    for line in path.read_text().splitlines():
        m = re.match(r"#+ (\d+(?:\.\d+)*)\.? ", line)
        if m:
            numbers.add(m.group(1))
    return numbers


def last_document(text):
    """The document named last in `text`, and where."""
    best = (-1, None)
    for pattern, doc in NAMES:
        for m in pattern.finditer(text):
            if m.start() > best[0]:
                best = (m.start(), doc)
    return best


def main():
    sections = {doc: headings(path) for doc, path in DOCS.items()}
    failures, count = [], 0
    for path in sorted(ROOT.glob("crates/**/*.rs")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            for m in SECTION.finditer(line):
                count += 1
                before = line[: m.start()]
                pos, doc = last_document(before)
                j = i
                while doc is None and j > 0 and i - j < 3:
                    j -= 1
                    pos, doc = last_document(lines[j])
                where = f"{path.relative_to(ROOT)}:{i + 1}"
                number = m.group(1)
                if doc is None:
                    failures.append(f"{where}: §{number} names no document")
                elif doc != "external" and number not in sections[doc]:
                    failures.append(f"{where}: §{number} is not a section of {DOCS[doc].relative_to(ROOT)}")
                else:
                    shown = "a public standard" if doc == "external" else DOCS[doc].relative_to(ROOT)
                    print(f"ok {where}: §{number} -> {shown}")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    print(f"{count} citations, {len(failures)} unresolved")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
