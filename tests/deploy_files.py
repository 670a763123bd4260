"""Read the deployment files as data: template.yaml resolved for given parameters, samconfig
profiles, the Cloud Run service's environment and the README tables that describe them.

The resolver evaluates exactly what CloudFormation would for one set of parameter values:
Conditions, resources' Condition attributes, Fn::If and AWS::NoValue, and the Rules' assertions.
Refs and other intrinsics stay as they are, so tests can check what points at what.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "infra" / "samconfig.toml"
AUTOSCALING = ROOT / "infra" / "autoscaling.yaml"
SERVICE_YAML = ROOT / "infra" / "gcp" / "service.yaml"
DEPLOY_SH = ROOT / "infra" / "gcp" / "deploy.sh"
README = ROOT / "README.md"
INFRA_README = ROOT / "infra" / "README.md"

_NO_VALUE = object()
# Pseudo parameters a condition may read (their example values); override them like parameters.
PSEUDO_PARAMETERS = {"AWS::Region": "us-east-1", "AWS::Partition": "aws", "AWS::AccountId": "123456789012"}


def load_template(path: Path = TEMPLATE) -> dict:
    template, errors = decode(str(path))
    assert not errors, [str(e) for e in errors]
    return template


def parameter_values(template: dict, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Every parameter's value as CloudFormation sees it: the default unless overridden, as a string."""
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    unknown = {k for k in overrides or {} if k not in PSEUDO_PARAMETERS} - set(values)
    assert not unknown, f"not template parameters: {sorted(unknown)}"
    values.update(overrides or {})
    return values


def _condition(expr: Any, params: dict[str, str], conditions: dict, cache: dict[str, bool]) -> Any:
    """Evaluate a condition expression (Fn::Equals/Not/And/Or, Condition, Ref to a parameter)."""
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, arg), = expr.items()
        if fn == "Ref":
            return params[arg] if arg in params else PSEUDO_PARAMETERS[arg]
        if fn == "Condition":
            return evaluate_condition(arg, params, conditions, cache)
        if fn == "Fn::Equals":
            a, b = (_condition(x, params, conditions, cache) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not _condition(arg[0], params, conditions, cache)
        if fn == "Fn::And":
            return all(_condition(x, params, conditions, cache) for x in arg)
        if fn == "Fn::Or":
            return any(_condition(x, params, conditions, cache) for x in arg)
        if fn == "Fn::Contains":  # Rules only
            values, value = arg
            return str(_condition(value, params, conditions, cache)) in [str(v) for v in values]
        raise AssertionError(f"condition function {fn} not supported by this resolver")
    return expr


def evaluate_condition(name: str, params: dict[str, str], conditions: dict, cache: dict[str, bool]) -> bool:
    if name not in cache:
        cache[name] = bool(_condition(conditions[name], params, conditions, cache))
    return cache[name]


def _resolve(node: Any, truth: dict[str, bool]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return _resolve(yes if truth[name] else no, truth)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        out = {}
        for key, value in node.items():
            value = _resolve(value, truth)
            if value is not _NO_VALUE:
                out[key] = value
        return out
    if isinstance(node, list):
        return [v for v in (_resolve(x, truth) for x in node) if v is not _NO_VALUE]
    return node


def resolve(template: dict, overrides: dict[str, str] | None = None) -> dict:
    """The template as deployed with these parameter values: conditional resources and outputs
    dropped or kept, every Fn::If chosen, AWS::NoValue removed, and the Rules checked."""
    params = parameter_values(template, overrides)
    conditions = template.get("Conditions", {})
    cache: dict[str, bool] = {}
    truth = {name: evaluate_condition(name, params, conditions, cache) for name in conditions}
    for rule_name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not _condition(rule["RuleCondition"], params, {}, {}):
            continue
        for assertion in rule["Assertions"]:
            holds = _condition(assertion["Assert"], params, {}, {})
            assert holds, f"rule {rule_name}: {assertion['AssertDescription']}"
    resources = {name: _resolve(r, truth) for name, r in template["Resources"].items()
                 if truth.get(r.get("Condition"), True)}
    outputs = {name: _resolve(o, truth) for name, o in template.get("Outputs", {}).items()
               if truth.get(o.get("Condition"), True)}
    return {"Parameters": params, "Resources": resources, "Outputs": outputs, "Conditions": truth}


def samconfig_overrides(env: str) -> dict[str, str]:
    """A samconfig profile's parameter_overrides as {name: value} (quotes around values removed)."""
    config = tomllib.loads(SAMCONFIG.read_text())
    overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
    items = overrides if isinstance(overrides, list) else overrides.split()
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        out[name] = value.strip('"')
    return out


def function_environment(template: dict) -> dict[str, Any]:
    """The Lambda function's environment variables: name -> raw template value (often a Ref)."""
    return template["Resources"]["FaceReadFunction"]["Properties"]["Environment"]["Variables"]


def service_yaml_env() -> dict[str, str]:
    """Environment variables the Cloud Run service (infra/gcp/service.yaml) sets."""
    service = yaml.safe_load(SERVICE_YAML.read_text())
    (container,) = service["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container.get("env", [])}


def deploy_sh_passthrough() -> set[str]:
    """The handler settings infra/gcp/deploy.sh passes through from the caller's environment."""
    text = DEPLOY_SH.read_text()
    match = re.search(r"^SETTINGS=\(([^)]*)\)", text, re.M)
    assert match, "deploy.sh: the SETTINGS=( ... ) list of passed-through variables is missing"
    return set(match.group(1).split())


def markdown_table(path: Path, first_header: str) -> list[dict[str, str]]:
    """Rows of the first Markdown table in `path` whose first header cell is `first_header`."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(cells, (c.strip() for c in row.strip().strip("|").split("|")))))
            return rows
    raise AssertionError(f"{path.name}: no table whose first column is {first_header!r}")
