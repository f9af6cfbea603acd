"""Just enough of a Dockerfile reader to check the images without a Docker engine.

Stages, their instructions with line continuations joined, and variable substitution from ARG
defaults and ENV (in instruction order, as the builder does), so a test can ask what a stage copies,
which user it runs as, its environment, health check and start command.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    destination: str
    from_stage: str | None
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)
    global_args: dict[str, str] = field(default_factory=dict)

    def variables_before(self, index: int) -> dict[str, str]:
        """ARG defaults and ENV values in effect before instruction `index` (unknowns stay `$NAME`)."""
        known: dict[str, str] = {}
        for instruction in self.instructions[:index]:
            if instruction.keyword == "ARG":
                name, _, default = instruction.value.partition("=")
                name = name.strip()
                value = default.strip() if default else self.global_args.get(name, "")
                known[name] = substitute(value, known)
            elif instruction.keyword == "ENV":
                for key, value in env_pairs(instruction.value):
                    known[key] = substitute(value, known)
        return known

    def resolved(self, keyword: str) -> list[tuple[Instruction, str]]:
        """Each `keyword` instruction with its variables substituted (as Docker does for that keyword)."""
        return [
            (instruction, substitute(instruction.value, self.variables_before(i)))
            for i, instruction in enumerate(self.instructions)
            if instruction.keyword == keyword
        ]

    def last(self, keyword: str) -> Instruction | None:
        found = [i for i in self.instructions if i.keyword == keyword]
        return found[-1] if found else None

    def user(self) -> str | None:
        users = self.resolved("USER")
        return users[-1][1].strip() if users else None

    def env(self) -> dict[str, str]:
        return {k: v for k, v in self.variables_before(len(self.instructions)).items() if self._is_env(k)}

    def _is_env(self, key: str) -> bool:
        return any(i.keyword == "ENV" and key in dict(env_pairs(i.value)) for i in self.instructions)

    def copies(self) -> list[Copy]:
        result = []
        for instruction, value in self.resolved("COPY"):
            words = json.loads(value) if value.lstrip().startswith("[") else shlex.split(value)
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            result.append(Copy(tuple(paths[:-1]), paths[-1], from_stage, instruction.line))
        return result

    def exec_form(self, keyword: str) -> list[str] | None:
        """ENTRYPOINT or CMD as an argument list; shell form becomes `/bin/sh -c ...` as in Docker."""
        instruction = self.last(keyword)
        if instruction is None:
            return None
        return _command(instruction.value)

    def healthcheck(self) -> tuple[dict[str, str], list[str]] | None:
        """(options, command) of the last HEALTHCHECK, or None when absent or `NONE`."""
        instruction = self.last("HEALTHCHECK")
        if instruction is None or instruction.value.strip().upper() == "NONE":
            return None
        options: dict[str, str] = {}
        rest = instruction.value.strip()
        while rest.startswith("--"):
            option, _, rest = rest.partition(" ")
            key, _, value = option[2:].partition("=")
            options[key] = value
            rest = rest.lstrip()
        keyword, _, command = rest.partition(" ")
        if keyword.upper() != "CMD":
            raise ValueError(f"HEALTHCHECK at line {instruction.line}: expected CMD, got {keyword!r}")
        return options, _command(command)


def _command(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        words = json.loads(value)
        if not all(isinstance(w, str) for w in words):
            raise ValueError(f"exec form must be a list of strings: {value}")
        return list(words)
    return ["/bin/sh", "-c", value]


def substitute(text: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name in variables:
            return variables[name]
        default = match.group("default")
        return default if default is not None else match.group(0)

    return _VARIABLE.sub(replace, text)


def env_pairs(value: str) -> list[tuple[str, str]]:
    words = shlex.split(value)
    if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        return [(words[0], " ".join(words[1:]))]
    pairs = [w.partition("=") for w in words]
    return [(key, value) for key, _, value in pairs]


def instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comment lines dropped, as the builder reads them."""
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(pending)
        pending = []
        keyword, _, value = joined.partition(" ")
        result.append(Instruction(keyword.upper(), value.strip(), start))
    if pending:
        raise ValueError("Dockerfile ends inside a line continuation")
    return result


def parse(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, in order; ARGs before the first FROM are the global ones."""
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for instruction in instructions(path.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            words = substitute(instruction.value, global_args).split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name, global_args=dict(global_args)))
        elif not stages:
            if instruction.keyword != "ARG":
                raise ValueError(f"{path}:{instruction.line}: only ARG may precede the first FROM")
            name, _, default = instruction.value.partition("=")
            global_args[name.strip()] = default.strip()
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise ValueError(f"{path}: no FROM instruction")
    return stages
