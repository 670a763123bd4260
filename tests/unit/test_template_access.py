"""Who may call the deployed function, how fast and how much (issue 15).

Each ApiAuth value is resolved as CloudFormation would deploy it (tests/deploy_files.py) and
linted; the samconfig profiles are checked against the template's constraints, against the
sizing rule for throttling and against what infra/README.md says they choose.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from cfnlint.api import ManualArgs, lint
from deploy_files import (
    AUTOSCALING,
    INFRA_README,
    SAMCONFIG,
    TEMPLATE,
    load_template,
    markdown_table,
    resolve,
    samconfig_overrides,
)

MODES = {
    "iam": {"ApiAuth": "iam"},
    "jwt": {"ApiAuth": "jwt", "JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc123",
            "JwtAudience": "client1,client2"},
    "none": {"ApiAuth": "none"},
}
PUBLIC_ROUTES = {"GET /", "GET /health"}
# The slowest request we measured end to end, a 12 MP photo (docs/reliability.md: 313 ms), rounded up.
SLOWEST_REQUEST_S = 0.35


@pytest.fixture(scope="module")
def tpl() -> dict:
    return load_template()


def routes(deployed: dict) -> dict[str, dict]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in deployed["Resources"].values()
            if r["Type"] == "AWS::ApiGatewayV2::Route"}


def of_type(deployed: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in deployed["Resources"].items() if r["Type"] == kind}


def check_value(name: str, value: str, param: dict) -> None:
    """Assert `value` passes the parameter's constraints, as CloudFormation checks them."""
    if "AllowedValues" in param:
        assert value in [str(v) for v in param["AllowedValues"]], f"{name}={value} not in AllowedValues"
    if "AllowedPattern" in param:
        assert re.fullmatch(param["AllowedPattern"], value), f"{name}={value!r} fails {param['AllowedPattern']}"
    if param["Type"] == "Number":
        number = float(value)
        assert float(param.get("MinValue", number)) <= number <= float(param.get("MaxValue", number)), name


@pytest.mark.parametrize("mode", MODES)
def test_cfn_lint_each_mode(mode: str) -> None:
    # cfn-lint checks every Fn::If branch already; linting with the mode's values as defaults also
    # checks those values against the parameters' constraints.
    text = TEMPLATE.read_text()
    for name, value in MODES[mode].items():
        text, count = re.subn(rf"(\n  {name}:\n(?:    .*\n)*?    Default: )\S*", rf'\g<1>"{value}"', text)
        assert count == 1, name
    findings = lint(text, config=ManualArgs(include_checks=["I"], regions=["us-east-1"]))
    assert findings == [], "\n".join(str(f) for f in findings)


@pytest.mark.parametrize("mode", MODES)
def test_authorizer_guards_analyze_only(tpl: dict, mode: str) -> None:
    """POST /analyze and the upload routes (the way round the body limit: same callers) are guarded alike."""
    for name, value in MODES[mode].items():
        check_value(name, value, tpl["Parameters"][name])
    deployed = resolve(tpl, MODES[mode])
    by_key = routes(deployed)
    assert set(by_key) == {"POST /analyze", "POST /uploads", "GET /uploads/{id}"} | PUBLIC_ROUTES
    for key in ("POST /uploads", "GET /uploads/{id}"):
        assert {k: v for k, v in by_key[key].items() if k != "RouteKey"} == \
            {k: v for k, v in by_key["POST /analyze"].items() if k != "RouteKey"}, key
    for key in PUBLIC_ROUTES:
        # No inference, no caller data, ~1 ms: public in every mode (uptime probes can't sign).
        assert by_key[key]["AuthorizationType"] == "NONE", key
        assert "AuthorizerId" not in by_key[key]
    analyze = by_key["POST /analyze"]
    authorizers = of_type(deployed, "AWS::ApiGatewayV2::Authorizer")
    expected = {"iam": "AWS_IAM", "jwt": "JWT", "none": "NONE"}[mode]
    assert analyze["AuthorizationType"] == expected
    if mode == "jwt":
        (name, authorizer), = authorizers.items()
        assert analyze["AuthorizerId"] == {"Ref": name}
        jwt = authorizer["Properties"]
        assert jwt["AuthorizerType"] == "JWT"
        assert jwt["IdentitySource"] == ["$request.header.Authorization"]
        assert jwt["JwtConfiguration"] == {"Issuer": {"Ref": "JwtIssuer"},
                                           "Audience": {"Fn::Split": [",", {"Ref": "JwtAudience"}]}}
        assert "AuthorizationScopes" not in analyze
    else:
        assert authorizers == {}
        assert "AuthorizerId" not in analyze


@pytest.mark.parametrize("mode", MODES)
def test_deploy_output_says_who_may_call(tpl: dict, mode: str) -> None:
    access = resolve(tpl, MODES[mode])["Outputs"]["Access"]["Value"]
    assert access.startswith("PUBLIC") == (mode == "none")
    assert f"ApiAuth={mode}" in access


def test_jwt_scopes_are_optional(tpl: dict) -> None:
    analyze = routes(resolve(tpl, {**MODES["jwt"], "JwtScopes": "faceread/analyze"}))["POST /analyze"]
    assert analyze["AuthorizationScopes"] == {"Fn::Split": [",", {"Ref": "JwtScopes"}]}


@pytest.mark.parametrize("missing", ["JwtIssuer", "JwtAudience"])
def test_jwt_without_issuer_or_audience_is_refused(tpl: dict, missing: str) -> None:
    with pytest.raises(AssertionError, match=f"needs {missing}"):
        resolve(tpl, {**MODES["jwt"], missing: ""})


def test_secure_by_default(tpl: dict) -> None:
    params = tpl["Parameters"]
    assert params["ApiAuth"]["Default"] == "iam"
    assert params["FunctionUrlEnabled"]["Default"] == "false"
    assert int(params["ReservedConcurrency"]["Default"]) > 0


@pytest.mark.parametrize("mode", MODES)
def test_every_route_reaches_the_live_alias(tpl: dict, mode: str) -> None:
    deployed = resolve(tpl, MODES[mode])
    (name, integration), = of_type(deployed, "AWS::ApiGatewayV2::Integration").items()
    assert integration["Properties"]["IntegrationUri"] == {"Ref": "FaceReadFunction.Alias"}
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    for key, route in routes(deployed).items():
        assert route["Target"] == {"Fn::Sub": f"integrations/${{{name}}}"}, key
    grants = [p["Properties"] for p in of_type(deployed, "AWS::Lambda::Permission").values()
              if p["Properties"]["Principal"] == "apigateway.amazonaws.com"]
    assert [g["FunctionName"] for g in grants] == [{"Ref": "FaceReadFunction.Alias"}]


@pytest.mark.parametrize("mode", MODES)
def test_function_url_follows_the_api_choice(tpl: dict, mode: str) -> None:
    assert "FunctionUrl" not in resolve(tpl, MODES[mode])["Resources"], "a Function URL must be opted into"
    deployed = resolve(tpl, {**MODES[mode], "FunctionUrlEnabled": "true"})
    url = deployed["Resources"]["FunctionUrl"]["Properties"]
    # Function URLs have no JWT authorizer: jwt falls back to IAM, never to public.
    assert url["AuthType"] == ("NONE" if mode == "none" else "AWS_IAM")
    assert url["TargetFunctionArn"] == {"Ref": "FaceReadFunction.Alias"}
    public = [p["Properties"] for p in of_type(deployed, "AWS::Lambda::Permission").values()
              if p["Properties"]["Principal"] == "*"]
    if mode == "none":
        # Both grants: new Function URLs need lambda:InvokeFunction as well as InvokeFunctionUrl.
        assert sorted(p["Action"] for p in public) == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
        assert all(p.get("FunctionUrlAuthType") == "NONE" or p.get("InvokedViaFunctionUrl") for p in public)
    else:
        assert public == []
    assert "FunctionUrl" in deployed["Outputs"]


def test_throttling_on_every_route(tpl: dict) -> None:
    deployed = resolve(tpl)
    (stage,) = of_type(deployed, "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["DefaultRouteSettings"] == {"ThrottlingRateLimit": {"Ref": "PublicRateLimit"},
                                             "ThrottlingBurstLimit": {"Ref": "PublicBurstLimit"}}
    assert props["RouteSettings"] == {"POST /analyze": {"ThrottlingRateLimit": {"Ref": "AnalyzeRateLimit"},
                                                        "ThrottlingBurstLimit": {"Ref": "AnalyzeBurstLimit"}}}
    # Route settings name routes by key: the stage must be created after them.
    route_names = {n for n, r in deployed["Resources"].items() if r["Type"] == "AWS::ApiGatewayV2::Route"}
    assert set(stage["DependsOn"]) == route_names
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}


def test_reserved_concurrency_is_a_parameter(tpl: dict) -> None:
    fn = tpl["Resources"]["FaceReadFunction"]["Properties"]
    assert fn["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    deployed = resolve(tpl, {"ReservedConcurrency": "7"})["Resources"]["FaceReadFunction"]["Properties"]
    assert deployed["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    # 0 leaves it unset (Lambda's own 0 would switch the function off).
    unset = resolve(tpl, {"ReservedConcurrency": "0"})["Resources"]["FaceReadFunction"]["Properties"]
    assert "ReservedConcurrentExecutions" not in unset


# Lambda keeps 100 of an account's concurrency unreserved, and a new account's quota may be 10:
# a profile that reserves none is capped by that quota (and by the throttles below) instead.
NEW_ACCOUNT_QUOTA = 10


@pytest.mark.parametrize("env", ["template defaults", "dev", "prod", "prod-autoscaled"])
def test_profile_is_valid_and_fits_under_the_cap(tpl: dict, env: str) -> None:
    overrides = {} if env == "template defaults" else samconfig_overrides(env)
    for name, value in overrides.items():
        check_value(name, value, tpl["Parameters"][name])
    p = resolve(tpl, overrides)["Parameters"]  # also checks the Rules
    reserved, provisioned = int(p["ReservedConcurrency"]), int(p["ProvisionedConcurrency"])
    if env == "dev":  # the first deploy infra/README.md has a new account make: no reservation to refuse
        assert reserved == 0, "dev: Lambda refuses ReservedConcurrency above the account's quota - 100"
    if reserved == 0:  # deployable on a new account; nothing unthrottled (the Function URL) may be on
        assert env == "dev" and p["FunctionUrlEnabled"] == "false", f"{env}: no spending cap"
        reserved = NEW_ACCOUNT_QUOTA
    assert provisioned <= reserved, f"{env}: Lambda refuses provisioned > reserved concurrency"
    # The API refuses a flood (429) before Lambda's cap does: a burst plus a second's worth of the
    # slowest requests fits under the reserved concurrency, beside what queue and batch work may
    # take (every *MaxConcurrency parameter: an SQS event source's MaximumConcurrency, a
    # Distributed Map's MaxConcurrency). A throttled SQS batch counts towards maxReceiveCount.
    http = int(p["AnalyzeBurstLimit"]) + int(p["AnalyzeRateLimit"]) * SLOWEST_REQUEST_S
    batch = {name: int(value) for name, value in p.items() if name.endswith("MaxConcurrency")}
    assert http + sum(batch.values()) <= reserved, (
        f"{env}: HTTP {http:.1f} + {batch} concurrent > ReservedConcurrency {reserved}; "
        "see infra/README.md, 'Throttling, sized from what a request costs'")


def test_prod_authenticates_and_dev_is_what_the_readme_says(tpl: dict) -> None:
    rows = {row["profile"]: row for row in markdown_table(INFRA_README, "profile")}
    assert set(rows) == {"dev", "prod", "prod-autoscaled"}
    for env, row in rows.items():
        overrides = samconfig_overrides(env)
        deployed = resolve(tpl, overrides)["Parameters"]
        assert "ApiAuth" in overrides, f"{env}: choose ApiAuth explicitly"
        for column, text in row.items():
            if column != "profile":
                assert text.strip("`") == deployed[column], f"{env}: README says {column}={text}"
    assert samconfig_overrides("prod")["ApiAuth"] != "none"


def test_function_url_is_refused_early_where_cloudformation_has_none(tpl: dict) -> None:
    """AWS::Lambda::Url is missing in some regions: there the URL is dropped and FunctionUrlEnabled=true
    is refused by a Rule (before any resource is created) naming the regions; everywhere else it deploys."""
    [assertion] = tpl["Rules"]["FunctionUrlNeedsARegionWithUrls"]["Assertions"]
    lacking = assertion["Assert"]["Fn::Not"][0]["Fn::Contains"][0]
    groups = tpl["Conditions"]["RegionWithoutFunctionUrls"]["Fn::Or"]
    assert sorted(e["Fn::Equals"][1] for g in groups for e in g["Fn::Or"]) == sorted(lacking)
    for region in lacking:
        with pytest.raises(AssertionError, match=f"no AWS::Lambda::Url in this region.*{region}"):
            resolve(tpl, {"FunctionUrlEnabled": "true", "AWS::Region": region})
        assert "FunctionUrl" not in resolve(tpl, {"AWS::Region": region})["Resources"]
    assert "FunctionUrl" in resolve(tpl, {"FunctionUrlEnabled": "true", "AWS::Region": "eu-west-1"})["Resources"]


def test_cfn_lint_is_clean_where_function_urls_are_missing(tpl: dict) -> None:
    # The regions the Rule names (E3006 there before the condition); `cfn-lint --regions ALL_REGIONS
    # template.yaml` checks every region (infra/README.md) but takes minutes on a busy 2-core machine.
    [assertion] = tpl["Rules"]["FunctionUrlNeedsARegionWithUrls"]["Assertions"]
    regions = assertion["Assert"]["Fn::Not"][0]["Fn::Contains"][0]
    findings = lint(TEMPLATE.read_text(), config=ManualArgs(regions=regions))
    assert findings == [], "\n".join(str(f) for f in findings)


def test_autoscaled_prod_never_fights_the_autoscaling_stack(tpl: dict) -> None:
    """The profile autoscaling.yaml names deploys prod's stack with ProvisionedConcurrency=0 said
    explicitly (SAM CLI reuses a parameter's previous value when a profile leaves it out)."""
    config = tomllib.loads(SAMCONFIG.read_text())
    assert "--config-env prod-autoscaled" in AUTOSCALING.read_text()
    stack = config["prod"]["deploy"]["parameters"]["stack_name"]
    assert config["prod-autoscaled"]["deploy"]["parameters"]["stack_name"] == stack
    prod, autoscaled = samconfig_overrides("prod"), samconfig_overrides("prod-autoscaled")
    assert autoscaled == {**prod, "ProvisionedConcurrency": "0"}
    assert autoscaled["EnableSnapStart"] == "false"
    for env in ("dev", "prod", "prod-autoscaled"):  # the parameters whose stale values would matter
        assert {"ApiAuth", "FunctionUrlEnabled", "ReservedConcurrency", "ProvisionedConcurrency",
                "EnableSnapStart"} <= set(samconfig_overrides(env)), env
