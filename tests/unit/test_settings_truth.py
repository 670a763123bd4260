"""handler/config.py is the one source of truth for settings; the deploy files follow it.

The settings are whatever `load_settings` reads (recorded, not listed here), so a setting added
to config.py fails these tests until template.yaml, infra/gcp/deploy.sh and the README's
configuration table carry it, or NOT_DEPLOYED says why it is not deployed. Every value a template
parameter accepts at its edges, every default, every service.yaml value and every samconfig
value goes through `load_settings`: whatever deploys also starts.
"""

from __future__ import annotations

import re

import pytest
from deploy_files import (
    README,
    deploy_sh_passthrough,
    function_environment,
    load_template,
    markdown_table,
    samconfig_overrides,
    service_yaml_env,
)

from handler.config import load_settings
from handler.errors import ConfigError

# Settings config.py reads that the Lambda template deliberately does not set, with the reason.
NOT_DEPLOYED: dict[str, str] = {
    "NET_CLONES": "a Lambda sandbox runs one request at a time: more copies of the nets would only cost memory",
}
# Set per deployment by the deploy tooling, not a tunable with a default worth comparing.
DEPLOYMENT_SPECIFIC = {"OUTPUT_BUCKET", "UPLOAD_BUCKET"}
# Read by functions-framework, not by the handler.
FRAMEWORK_VARS = {"FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"}
# Strings tried against each AllowedPattern: any the pattern lets through must also load.
PATTERN_SAMPLES = ["a/", "x y/", "ü/", "deep/er/", "a", "/a/", "", "*", "0", "1.5", "https://example.com"]


class RecordingEnv(dict):
    """An environment that remembers every name looked up in it."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key: str, default: object = None) -> object:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> object:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(key)
        return super().__contains__(key)


def config_vars() -> set[str]:
    env = RecordingEnv()
    load_settings(env)
    return env.read


CONFIG_VARS = config_vars()
TEMPLATE = load_template()
PARAMS = TEMPLATE["Parameters"]


def parameter_of(value: object) -> str | None:
    """The parameter an environment value comes from: Ref P, or Fn::If [c, Ref P, NoValue]."""
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in PARAMS:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::If" in value:
        _, yes, no = value["Fn::If"]
        if no == {"Ref": "AWS::NoValue"}:
            return parameter_of(yes)
    return None


ENV = function_environment(TEMPLATE)
PARAM_OF_VAR = {var: p for var, value in ENV.items() if (p := parameter_of(value))}
DEFAULTS = load_settings({})


def loads(var: str, value: str) -> bool:
    try:
        load_settings({var: value})
    except ConfigError:
        return False
    return True


def test_every_setting_reaches_the_lambda_template() -> None:
    missing = CONFIG_VARS - set(ENV) - set(NOT_DEPLOYED)
    assert not missing, (
        f"handler/config.py reads {sorted(missing)} but template.yaml's function does not set it: add a "
        "parameter whose range and default equal config.py's and map it in Environment.Variables, or list "
        "it in NOT_DEPLOYED in this test with the reason")


def test_template_sets_only_settings_config_reads() -> None:
    stray = set(ENV) - CONFIG_VARS
    assert not stray, f"template.yaml sets {sorted(stray)}, which handler/config.py never reads"


def test_gcp_deploy_script_passes_every_setting_through() -> None:
    expected = CONFIG_VARS - {"MODEL_DIR", "OUTPUT_BUCKET", "UPLOAD_BUCKET"}
    assert deploy_sh_passthrough() == expected, "update SETTINGS=( ... ) in infra/gcp/deploy.sh"


def test_readme_configuration_table_lists_every_setting() -> None:
    documented = {row["variable"].strip("`") for row in markdown_table(README, "variable")}
    assert documented == CONFIG_VARS, f"README configuration table: missing {sorted(CONFIG_VARS - documented)}, " \
                                      f"stale {sorted(documented - CONFIG_VARS)}"


@pytest.mark.parametrize("var", sorted(PARAM_OF_VAR))
def test_parameter_default_is_config_default(var: str) -> None:
    param = PARAM_OF_VAR[var]
    default = str(PARAMS[param].get("Default", ""))
    assert load_settings({var: default}) == DEFAULTS, (
        f"template.yaml's {param} defaults to {default!r}, which is not handler/config.py's default for {var}")


@pytest.mark.parametrize("var", sorted(PARAM_OF_VAR))
def test_parameter_accepts_exactly_what_config_accepts(var: str) -> None:
    name = PARAM_OF_VAR[var]
    param = PARAMS[name]
    if param["Type"] == "Number":
        assert "MinValue" in param and "MaxValue" in param, f"{name}: give MinValue/MaxValue equal to config.py's"
        lo, hi = float(param["MinValue"]), float(param["MaxValue"])
        for edge in (param["MinValue"], param["MaxValue"]):
            assert loads(var, str(edge)), f"{name} allows {edge}, which {var} refuses: every cold start would fail"
        # Integers step by 1, other numbers by a millionth: just outside must be refused, or the
        # template's range is narrower than config.py's.
        integral = lo.is_integer() and hi.is_integer() and not loads(var, str(lo + 0.5))
        step = 1 if integral else 1e-6
        for outside in (lo - step, hi + step):
            text = str(int(outside)) if integral else f"{outside:.6f}"
            assert not loads(var, text), f"config.py accepts {var}={text} but template.yaml's {name} does not"
    for value in param.get("AllowedValues", []):
        assert loads(var, str(value)), f"{name} allows {value!r}, which {var} refuses"
    if "AllowedValues" in param:
        assert not loads(var, "not-an-allowed-value"), f"config.py does not validate {var}"
    pattern = param.get("AllowedPattern")
    for sample in PATTERN_SAMPLES:
        if pattern and re.fullmatch(pattern, sample):
            assert loads(var, sample), f"{name}'s pattern allows {sample!r}, which {var} refuses"


def test_cloud_run_service_values_are_config_defaults() -> None:
    env = service_yaml_env()
    stray = set(env) - CONFIG_VARS - FRAMEWORK_VARS
    assert not stray, f"infra/gcp/service.yaml sets {sorted(stray)}, which handler/config.py never reads"
    settings = {k: v for k, v in env.items() if k in CONFIG_VARS}
    load_settings(settings)
    for var, value in settings.items():
        if var not in DEPLOYMENT_SPECIFIC:
            # A different value here silently changes answers on Cloud Run only (MIN_CONFIDENCE 0.5
            # once made the cat in chelsea.png a face there). Change config.py's default instead.
            assert load_settings({var: value}) == DEFAULTS, f"service.yaml: {var}={value} is not config.py's default"


@pytest.mark.parametrize("profile", ["dev", "prod", "prod-autoscaled"])
def test_samconfig_values_load(profile: str) -> None:
    overrides = samconfig_overrides(profile)
    env = {var: overrides[p] for var, p in PARAM_OF_VAR.items() if p in overrides}
    load_settings(env)

