"""Loading rules/*.yaml: good rules load, and a bad one stops start-up naming file, rule and
problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailflow.automation.conditions import AllOf
from mailflow.automation.schema import RuleError, RuleSet, load_file, load_rules
from mailflow.config import Config, from_mapping
from mailflow.render import Renderer
from mailflow.resources import rules_dir

Load = Callable[..., RuleSet]


@pytest.fixture
def rules_path(tmp_path: Path) -> Path:
    path = tmp_path / "rules"
    path.mkdir()
    return path


def config_for(tmp_path: Path, rules: dict[str, Any]) -> Config:
    return from_mapping({"rules": rules}, "test.toml", tmp_path)


@pytest.fixture
def load(tmp_path: Path, rules_path: Path) -> Load:
    """Write {file name: YAML text} into the rules directory and load it."""

    def load(files: dict[str, str], extra: dict[str, str] | None = None) -> RuleSet:
        for name, text in files.items():
            (rules_path / name).write_text(text, encoding="utf-8")
        settings: dict[str, Any] = {"dir": str(rules_path)}
        if extra is not None:
            extra_path = tmp_path / "extra"
            extra_path.mkdir()
            for name, text in extra.items():
                (extra_path / name).write_text(text, encoding="utf-8")
            settings["extra_dir"] = "extra"
        config = config_for(tmp_path, settings)
        return load_rules(config, Renderer.from_config(config))

    return load


def refused(load: Load, text: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        load({"team.yaml": text})
    return caught.value


GOOD = """
rules:
  - name: urgent mail is escalated
    trigger: ticket_created
    types: [ticket]
    if: {message.subject: {contains: urgent}, ticket.priority: normal}
    do:
      - set_priority: urgent
      - set_status: agent waiting

  - name: thank the customer
    trigger: ticket_created
    do:
      - send: {template: customer/auto_reply, to: customer}
      - stop: true
"""


def test_good_rules_load_in_file_order(load: Load) -> None:
    ruleset = load({"team.yaml": GOOD})

    escalate, thank = ruleset.rules
    assert escalate.name == "urgent mail is escalated"
    assert escalate.trigger == "ticket_created"
    assert escalate.types == frozenset({"ticket"})
    assert isinstance(escalate.condition, AllOf)
    assert [name for name, _ in escalate.actions] == ["set_priority", "set_status"]
    assert thank.types is None
    assert thank.condition is None
    assert [name for name, _ in thank.actions] == ["send", "stop"]
    assert escalate.file.endswith("team.yaml")


def test_rules_are_matched_by_trigger_and_type(load: Load) -> None:
    ruleset = load({"team.yaml": GOOD})

    assert [r.name for r in ruleset.matching("ticket_created", "ticket")] == [
        "urgent mail is escalated",
        "thank the customer",
    ]
    assert [r.name for r in ruleset.matching("ticket_created", "suggestion")] == [
        "thank the customer"
    ]
    assert ruleset.matching("customer_replied", "ticket") == []


def test_files_load_in_name_order_then_the_extra_directory(load: Load) -> None:
    def one(name: str) -> str:
        return f"rules:\n  - {{name: {name}, trigger: assigned, do: [{{stop: true}}]}}\n"

    ruleset = load(
        {"20-late.yaml": one("late"), "10-early.yml": one("early"), "notes.txt": "not rules"},
        extra={"00-extra.yaml": one("extra")},
    )

    assert [r.name for r in ruleset.rules] == ["early", "late", "extra"]


def test_a_single_type_name_is_accepted_for_types(load: Load) -> None:
    rule = "{name: a, trigger: assigned, types: suggestion, do: [{stop: true}]}"

    ruleset = load({"a.yaml": f"rules:\n  - {rule}\n"})

    assert ruleset.rules[0].types == frozenset({"suggestion"})


def test_an_empty_file_holds_no_rules(load: Load) -> None:
    assert load({"empty.yaml": "# nothing yet\n"}).rules == ()


def test_a_disabled_rule_is_not_loaded(load: Load) -> None:
    ruleset = load(
        {
            "a.yaml": "rules:\n"
            "  - {name: paused, trigger: assigned, enabled: false, do: [{stop: true}]}\n"
            "  - {name: active, trigger: assigned, do: [{stop: true}]}\n"
        }
    )

    assert [r.name for r in ruleset.rules] == ["active"]


def test_a_disabled_rule_is_still_checked(load: Load) -> None:
    error = refused(
        load,
        "rules:\n  - {name: paused, trigger: assigned, enabled: false, do: [{explode: true}]}\n",
    )

    assert error.rule == "paused"
    assert "unknown action 'explode'" in error.problem


def test_shipped_default_rules_load_with_the_default_config(tmp_path: Path) -> None:
    config = from_mapping({}, "test.toml", tmp_path)

    ruleset = load_rules(config, Renderer.from_config(config))

    assert {r.file for r in ruleset.rules} == {str(rules_dir() / "default.yaml")}
    assert "auto-reply to a new ticket" in [r.name for r in ruleset.rules]
    assert ruleset.matching("ticket_created", "ticket")
    assert ruleset.matching("customer_replied", "suggestion")


# -------------------------------------------------------------------------------- errors

RULE = "rules:\n  - name: broken rule\n    trigger: ticket_created\n"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("    do: [{stop: true}]\n    colour: red\n", "unknown keys ['colour']"),
        ("    do: [{explode: true}]\n", "unknown action 'explode'"),
        ("    do: [{set_status: on hold}]\n", "set_status: 'on hold' is not a status"),
        ("    do: [{send: {template: customer/no_such}}]\n", "no template customer/no_such"),
        ("    do: [{send: {template: customer/auto_reply, to: everyone}}]\n", "send.to"),
        ("    types: [complaint]\n    do: [{stop: true}]\n", "'complaint' is not a ticket type"),
        ("    types: []\n    do: [{stop: true}]\n", "`types` must be"),
        ("    if: {ticket.colour: red}\n    do: [{stop: true}]\n", "unknown field"),
        (
            "    if: {not: {ticket.fields.severty: s1}}\n    do: [{stop: true}]\n",
            "no ticket field 'severty'; known: none; declare them as [[ticket_fields]]",
        ),
        ("    do: []\n", "`do` must be a non-empty list"),
        ("    enabled: maybe\n    do: [{stop: true}]\n", "`enabled` must be true or false"),
        ("    do: [{set_priority: whenever}]\n", "set_priority: 'whenever' is not one of"),
        ("    do: [{assign: somebody}]\n", "assign: 'somebody' is not"),
        ("    do: [{stop: true, set_priority: low}]\n", "each action is a mapping with one key"),
    ],
)
def test_a_bad_rule_is_refused_naming_file_rule_and_problem(
    load: Load, rules_path: Path, body: str, problem: str
) -> None:
    error = refused(load, RULE + body)

    assert error.file == str(rules_path / "team.yaml")
    assert error.rule == "broken rule"
    assert problem in error.problem
    assert str(error).startswith(f"{rules_path / 'team.yaml'}: rule 'broken rule': ")


def test_a_custom_field_in_a_condition_must_be_declared(tmp_path: Path, rules_path: Path) -> None:
    (rules_path / "fields.yaml").write_text(
        "rules:\n  - name: severe\n    trigger: ticket_created\n"
        "    if: {any: [{ticket.fields.severity: s1}, {ticket.fields.severty: s2}]}\n"
        "    do: [{set_priority: high}]\n"
    )
    fields = [{"name": "severity", "type": "choice", "choices": ["s1", "s2"]}]
    config = from_mapping(
        {"rules": {"dir": str(rules_path)}, "ticket_fields": fields}, "test.toml", tmp_path
    )

    with pytest.raises(RuleError) as caught:
        load_rules(config, Renderer.from_config(config))

    assert caught.value.problem == "no ticket field 'severty'; known: severity"


def test_unknown_trigger_is_refused_with_the_known_ones(load: Load) -> None:
    error = refused(load, "rules:\n  - {name: r, trigger: ticket_exploded, do: [{stop: true}]}")

    assert error.rule == "r"
    assert "`trigger: ticket_exploded` is not a trigger" in error.problem
    assert "ticket_created" in error.problem


def test_set_status_must_exist_in_every_type_the_rule_covers(load: Load) -> None:
    # "agent waiting" is a status of `ticket` but not of `suggestion`.
    error = refused(
        load, "rules:\n  - {name: r, trigger: assigned, do: [{set_status: agent waiting}]}"
    )

    assert "not a status of type 'suggestion'" in error.problem
    assert "limit the rule with `types:`" in error.problem
    narrowed = "{name: r, trigger: assigned, types: [ticket], do: [{set_status: agent waiting}]}"
    assert load({"team.yaml": f"rules:\n  - {narrowed}\n"}).rules[0].name == "r"


def test_invalid_yaml_is_refused_naming_the_file(load: Load, rules_path: Path) -> None:
    error = refused(load, "rules:\n  - name: [unclosed\n")

    assert error.file == str(rules_path / "team.yaml")
    assert error.rule is None
    assert "is not valid YAML" in error.problem


@pytest.mark.parametrize(
    "text", ["- name: r\n", "rules: {name: r}\n", "rules: []\nextra: 1\n", "just text\n"]
)
def test_a_file_must_hold_a_list_under_rules(load: Load, text: str) -> None:
    error = refused(load, text)

    assert "must hold one key, `rules`, with a list of rules" in error.problem


@pytest.mark.parametrize(
    ("entry", "problem"),
    [("- just a string", "a rule must be a mapping"), ("- {trigger: assigned}", "needs a `name`")],
)
def test_a_rule_without_a_name_is_named_by_its_position(
    load: Load, entry: str, problem: str
) -> None:
    error = refused(
        load, f"rules:\n  - {{name: first, trigger: assigned, do: [{{stop: true}}]}}\n  {entry}\n"
    )

    assert error.rule == "#2"
    assert problem in error.problem


def test_duplicate_rule_names_across_files_are_refused(load: Load, rules_path: Path) -> None:
    rule = "rules:\n  - {name: same, trigger: assigned, do: [{stop: true}]}\n"

    with pytest.raises(RuleError) as caught:
        load({"a.yaml": rule, "b.yaml": rule})

    assert caught.value.file == str(rules_path / "b.yaml")
    assert caught.value.rule == "same"
    assert f"already used in {rules_path / 'a.yaml'}" in caught.value.problem


def test_a_missing_rules_directory_is_refused(tmp_path: Path) -> None:
    config = config_for(tmp_path, {"dir": "nowhere"})

    with pytest.raises(RuleError) as caught:
        load_rules(config, Renderer.from_config(config))

    assert caught.value.file == str(tmp_path / "nowhere")
    assert "does not exist" in caught.value.problem


def test_load_file_reads_one_file(tmp_path: Path, rules_path: Path) -> None:
    path = rules_path / "one.yaml"
    path.write_text(GOOD, encoding="utf-8")
    config = config_for(tmp_path, {"dir": str(rules_path)})

    rules = load_file(path, config, Renderer.from_config(config))

    assert [r.name for r in rules] == ["urgent mail is escalated", "thank the customer"]


def test_the_yaml_key_on_is_named_as_the_mistake(load: Load) -> None:
    error = refused(load, "rules:\n  - name: x\n    on: ticket_created\n    do: [stop: true]\n")
    assert error.problem == "rules name their trigger with `trigger:`, not `on:`"


def test_an_unquoted_yes_as_a_name_asks_for_quotes(load: Load) -> None:
    error = refused(
        load, "rules:\n  - name: yes\n    trigger: ticket_created\n    do: [stop: true]\n"
    )
    assert error.problem == "the name True must be quoted"


def test_a_trigger_that_is_not_a_word_is_refused(load: Load) -> None:
    error = refused(
        load, "rules:\n  - name: x\n    trigger: [ticket_created]\n    do: [stop: true]\n"
    )
    assert error.rule == "x"
    assert "is not a trigger" in error.problem


def test_a_template_that_does_not_compile_names_the_rule(tmp_path: Path, rules_path: Path) -> None:
    templates = tmp_path / "templates" / "customer"
    templates.mkdir(parents=True)
    (templates / "broken.txt.j2").write_text("{% if %}")
    (rules_path / "a.yaml").write_text(
        "rules:\n  - name: send broken\n    trigger: ticket_created\n"
        "    do: [send: {template: customer/broken, to: customer}]\n"
    )
    config = from_mapping(
        {"rules": {"dir": str(rules_path)}, "templates": {"dir": "templates"}}, "t.toml", tmp_path
    )
    with pytest.raises(RuleError) as caught:
        load_rules(config, Renderer.from_config(config))
    assert caught.value.rule == "send broken"
    assert "customer/broken.txt.j2" in caught.value.problem
