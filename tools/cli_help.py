"""Reads brine's command line from the built binary's own --help output (CLI11's formatter), so the
man page and the shell completion generated from it (gen_manpage.py, gen_bash_completion.py) list
exactly the subcommands, options, choices and texts the binary accepts and can never drift from it.

The layout parsed is CLI11's: description lines, a "Usage:" line, sections ("Options:", a group
name, ...) whose items are "  NAME  DESCRIPTION" (a NAME too long for the column puts DESCRIPTION on
the following, deeper-indented line), and the footer after the last section."""
import re
import subprocess
from dataclasses import dataclass, field


@dataclass
class Item:
    name: str                       # as shown: "-f,--format TEXT:{text,json}=text"
    description: str = ""

    @property
    def flags(self):
        """The option's spellings (["-f", "--format"]); empty for a positional or subcommand."""
        head = self.name.split(" ", 1)[0]
        return [f for f in head.split(",") if f.startswith("-")]

    @property
    def value_type(self):
        """"TEXT", "UINT", ... for an option that takes a value, "" for a flag."""
        rest = self.name.split(" ", 1)[1] if " " in self.name else ""
        m = re.match(r"([A-Z]+)", rest)
        return m.group(1) if m else ""

    @property
    def choices(self):
        m = re.search(r":\{([^}]*)\}", self.name)
        return m.group(1).split(",") if m else []


@dataclass
class Section:
    title: str
    items: list = field(default_factory=list)


@dataclass
class Help:
    description: str = ""
    usage: str = ""
    sections: list = field(default_factory=list)
    footer: str = ""

    def section(self, title):
        return next((s for s in self.sections if s.title == title), None)

    def options(self):
        return [i for s in self.sections if s.title not in ("Positionals", "Subcommands") for i in s.items]


def parse(text):
    h = Help()
    description, footer = [], []
    current = None  # the open section
    for line in text.splitlines():
        if h.usage == "" and not line.startswith("Usage:"):
            description.append(line)
        elif line.startswith("Usage:"):
            h.usage = line[len("Usage:"):].strip()
        elif line.strip() == "":
            current = None
        elif not line.startswith(" ") and line.endswith(":") and not footer:
            current = Section(line[:-1])
            h.sections.append(current)
        elif current is not None and line.startswith("    ") and current.items:
            item = current.items[-1]
            item.description = (item.description + "\n" if item.description else "") + line.strip()
        elif current is not None and line.startswith("  "):
            m = re.match(r"^  (\S.*?)(?:\s{2,}(\S.*))?$", line)
            current.items.append(Item(m.group(1), m.group(2) or ""))
        else:
            footer.append(line)
    h.description = "\n".join(description).strip()
    h.footer = "\n".join(footer).strip()
    return h


def run(brine, *args):
    return subprocess.run([brine, *args], check=True, capture_output=True, text=True).stdout


def read_cli(brine):
    """(top-level Help, {subcommand: Help}, version line) from the binary."""
    top = parse(run(brine, "--help"))
    subs = {}
    for item in (top.section("Subcommands").items if top.section("Subcommands") else []):
        subs[item.name] = parse(run(brine, item.name, "--help"))
    return top, subs, run(brine, "--version").strip()


def read_cli_nested(brine):
    """Like read_cli, with nested subcommands too ({"rules": ..., "rules explain": ...})."""
    top, subs, version = read_cli(brine)
    nested = {}
    for name, h in subs.items():
        nested[name] = h
        for item in (h.section("Subcommands").items if h.section("Subcommands") else []):
            nested[f"{name} {item.name}"] = parse(run(brine, name, item.name, "--help"))
    return top, nested, version
