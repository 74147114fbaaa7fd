"""Load rules/*.yaml into Rule values, or stop with the file, the rule and the problem."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mailflow.automation import ticket_actions  # noqa: F401  (registers its actions)
from mailflow.automation.actions import ACTIONS, Action, ActionProblem, LoadScope
from mailflow.automation.conditions import (
    Condition,
    ConditionProblem,
    custom_fields_in,
    parse_condition,
)
from mailflow.automation.timers import TIME_TRIGGERS, Timer, TimerProblem, parse_timer
from mailflow.config import Config
from mailflow.render import Renderer, TemplateProblem
from mailflow.resources import rules_dir
from mailflow.tickets.events import TRIGGERS

RULE_KEYS = {"name", "trigger", "when", "types", "if", "do", "enabled", "description"}


class RuleError(Exception):
    def __init__(self, file: str, rule: str | None, problem: str) -> None:
        super().__init__(file, rule, problem)
        self.file, self.rule, self.problem = file, rule, problem

    def __str__(self) -> str:
        where = f"{self.file}: rule {self.rule!r}" if self.rule else self.file
        return f"{where}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    file: str
    trigger: str
    types: frozenset[str] | None  # None: every type
    condition: Condition | None
    actions: tuple[tuple[str, Action], ...]
    timer: Timer | None = None  # for the time-based triggers

    def applies(self, trigger: str, type_name: str) -> bool:
        return trigger == self.trigger and self.covers(type_name)

    def covers(self, type_name: str) -> bool:
        return self.types is None or type_name in self.types


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def matching(self, trigger: str, type_name: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.applies(trigger, type_name)]

    @property
    def timed(self) -> list[Rule]:
        return [rule for rule in self.rules if rule.timer is not None]


def rule_files(config: Config) -> list[Path]:
    directories = [config.path(config.rules.dir) if config.rules.dir else rules_dir()]
    if config.rules.extra_dir:
        directories.append(config.path(config.rules.extra_dir))
    files: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            raise RuleError(str(directory), None, "rules directory does not exist")
        files += sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
    return files


def load_rules(config: Config, renderer: Renderer) -> RuleSet:
    rules: list[Rule] = []
    for path in rule_files(config):
        rules += load_file(path, config, renderer)
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.name in seen:
            raise RuleError(rule.file, rule.name, f"the name is already used in {seen[rule.name]}")
        seen[rule.name] = rule.file
    return RuleSet(tuple(rules))


def load_file(path: Path, config: Config, renderer: Renderer) -> list[Rule]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(str(path), None, f"cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise RuleError(str(path), None, f"is not valid YAML: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) != {"rules"} or not isinstance(data["rules"], list):
        raise RuleError(str(path), None, "must hold one key, `rules`, with a list of rules")
    rules = []
    for index, entry in enumerate(data["rules"]):
        rule = _rule(str(path), index, entry, config, renderer)
        if rule is not None:
            rules.append(rule)
    return rules


def _rule(file: str, index: int, entry: Any, config: Config, renderer: Renderer) -> Rule | None:
    if not isinstance(entry, dict):
        raise RuleError(file, f"#{index + 1}", "a rule must be a mapping")
    name = entry.get("name")
    if isinstance(name, bool):  # YAML 1.1 reads an unquoted yes/no/on/off as a boolean
        raise RuleError(file, f"#{index + 1}", f"the name {name} must be quoted")
    if not isinstance(name, str) or not name.strip():
        raise RuleError(file, f"#{index + 1}", "every rule needs a `name`")

    def problem(text: str) -> RuleError:
        return RuleError(file, name, text)

    if True in entry:  # YAML 1.1 reads the key `on:` as the boolean true
        raise problem("rules name their trigger with `trigger:`, not `on:`")
    unknown = [str(key) for key in entry if key not in RULE_KEYS]
    if unknown:
        raise problem(f"unknown keys {unknown}; a rule has {sorted(RULE_KEYS)}")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise problem("`enabled` must be true or false")
    trigger = entry.get("trigger")
    known = [*TRIGGERS, *TIME_TRIGGERS]
    if not isinstance(trigger, str) or trigger not in known:
        raise problem(f"`trigger: {trigger}` is not a trigger; known: {', '.join(known)}")
    if "when" in entry and trigger not in TIME_TRIGGERS:
        raise problem(f"`when:` is for the time-based triggers ({', '.join(TIME_TRIGGERS)})")
    types = _types(entry.get("types", "all"), config, problem)
    if types is not None and not types:
        return None  # {with_status: S} and no declared type has S: nothing to do here
    scope = LoadScope(
        rule=name,
        trigger=trigger,
        types=tuple(t for t in config.types if types is None or t.name in types),
        renderer=renderer,
        config=config,
    )
    try:
        condition = parse_condition(entry["if"]) if "if" in entry else None
        _check_custom_fields(condition, config)
        actions = _actions(entry.get("do"), scope)
        timer = None
        if trigger in TIME_TRIGGERS:
            statuses = set.intersection(*(set(t.statuses) for t in scope.types))
            timer = parse_timer(trigger, entry.get("when"), statuses)
    except (ConditionProblem, ActionProblem, TemplateProblem, TimerProblem) as exc:
        raise problem(str(exc)) from None
    if not enabled:
        return None
    return Rule(name, file, trigger, types, condition, actions, timer)


def _check_custom_fields(condition: Condition | None, config: Config) -> None:
    """A misspelt ticket.fields.NAME would silently never match: refuse it at load."""
    declared = {field.name for field in config.ticket_fields}
    unknown = sorted(custom_fields_in(condition) - declared) if condition else []
    if unknown:
        known = ", ".join(sorted(declared)) or "none; declare them as [[ticket_fields]]"
        raise ConditionProblem(f"no ticket field {unknown[0]!r}; known: {known}")


def _types(value: Any, config: Config, problem: Any) -> frozenset[str] | None:
    """`all`, names, or {with_status: S}: every declared type that has status S, so that a
    rule such as the shipped status flips fits whatever types an installation declares."""
    if value == "all":
        return None
    if isinstance(value, dict) and set(value) == {"with_status"}:
        status = value["with_status"]
        if not isinstance(status, str) or not status:
            raise problem("types: with_status names a status, e.g. {with_status: open}")
        return frozenset(t.name for t in config.types if status in t.statuses)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise problem(
            "`types` must be `all`, a type name, a list of type names or {with_status: S}"
        )
    known = [t.name for t in config.types]
    for type_name in names:
        if type_name not in known:
            raise problem(f"types: {type_name!r} is not a ticket type ({', '.join(known)})")
    return frozenset(names)


def _actions(value: Any, scope: LoadScope) -> tuple[tuple[str, Action], ...]:
    if not isinstance(value, list) or not value:
        raise ActionProblem("`do` must be a non-empty list of actions")
    actions = []
    for item in value:
        if not isinstance(item, dict) or len(item) != 1:
            raise ActionProblem(f"each action is a mapping with one key, got {item!r}")
        ((name, argument),) = item.items()
        if name not in ACTIONS:
            raise ActionProblem(f"unknown action {name!r}; known: {', '.join(sorted(ACTIONS))}")
        actions.append((name, ACTIONS[name](argument, scope)))
    return tuple(actions)


def describe(rules: Sequence[Rule]) -> list[str]:
    return [f"{r.name} (on {r.trigger}, {r.file})" for r in rules]
