"""Every way in reads the request options through one table: the JSON body, the query string,
S3 Batch Operations userArguments and the command line give the same Options for the same text,
and the same 400 naming the option for a bad one. The cases are made from the table itself."""

from __future__ import annotations

import json

import pytest
from helpers import load_event

from handler import __main__ as cli
from handler import aws, http_api, options
from handler.batch import options_from_arguments
from handler.errors import RequestError
from handler.options import TABLE, OptionSpec
from handler.service import DEFAULT_OPTIONS, parse_options


def _high(spec: OptionSpec) -> float:
    return DEFAULT_OPTIONS.max_faces if spec.high is None else spec.high


def good_text(spec: OptionSpec) -> list[tuple[str, object]]:
    """(text, the JSON value it means) pairs that the table accepts."""
    if spec.kind == "bool":
        return [("true", True), ("1", True), (" TRUE ", True), ("false", False), ("0", False), ("False", False)]
    if spec.kind == "choice":
        return [(c, c) for c in spec.choices] + [(spec.choices[0].upper(), spec.choices[0])]
    if spec.kind == "int":
        return [(str(spec.low), spec.low), (str(_high(spec)), _high(spec))]
    return [(str(spec.low), spec.low), (str(spec.high), spec.high), (f" {(spec.low + spec.high) / 2} ",
                                                                     (spec.low + spec.high) / 2)]


def bad_text(spec: OptionSpec) -> list[str]:
    """Text that the table refuses: unreadable, or outside the bounds or choices."""
    if spec.kind == "bool":
        return ["yes", "2", "", "on"]
    if spec.kind == "choice":
        return ["", "not-" + spec.choices[0]]
    out = ["abc", "", str(spec.low - 1), str(_high(spec) + 1)]
    return out + (["2.5"] if spec.kind == "int" else ["nan", "inf", str(spec.low / 2)])


def bad_json(spec: OptionSpec) -> list[object]:
    """JSON values the table refuses: the JSON body is typed, so text is not read there."""
    if spec.kind == "bool":
        return ["1", "true", 1, None]
    if spec.kind == "choice":
        return [1, [spec.choices[0]], None]
    return [True, str(spec.low), spec.low - 1, _high(spec) + 1, None]


GOOD = [(s, text, value) for s in TABLE for text, value in good_text(s)]
BAD_TEXT = [(s, text) for s in TABLE for text in bad_text(s)]
CLI_FLAGS = [s for s in TABLE if s.name not in cli._BY_FILE]


def test_the_table_names_every_option_merged_accepts() -> None:
    assert set(options.BY_NAME) == {"annotate", "output", "detail", "min_confidence", "max_faces"}
    with pytest.raises(RequestError, match="known: annotate, detail, max_faces, min_confidence, output"):
        DEFAULT_OPTIONS.merged({"max_pixels": 1})


@pytest.mark.parametrize("spec, text, value", GOOD, ids=[f"{s.name}={t!r}" for s, t, _ in GOOD])
def test_every_way_in_means_the_same(spec: OptionSpec, text: str, value: object) -> None:
    expected = DEFAULT_OPTIONS.merged({spec.name: value})  # the JSON body's `options`
    assert parse_options(http_api.query_options({spec.name: text})) == expected  # ?name=text
    assert options_from_arguments({spec.name: text}) == expected  # Batch Operations userArguments
    if spec in CLI_FLAGS:
        args = cli.build_parser().parse_args(["photo.jpg", "--out", "a.jpg", "--" + spec.name.replace("_", "-"), text])
        assert cli.cli_options(args) == expected


def test_annotate_one_means_the_same_in_the_query_and_in_user_arguments() -> None:
    """The issue's case: `?annotate=1` was accepted, userArguments {"annotate": "1"} refused."""
    assert options_from_arguments({"annotate": "1"}) == parse_options(http_api.query_options({"annotate": "1"})) \
        == DEFAULT_OPTIONS.merged({"annotate": True})
    assert options_from_arguments({"annotate": "0"}).annotate is False


def _http_error(query: dict[str, str]) -> dict:
    response = http_api.handle(http_api.HttpRequest("POST", "/analyze", {"content-type": "image/png"}, query,
                                                    b"\x89PNG not read: the options are checked first"))
    assert response.status == 400
    return json.loads(response.body)["error"]


def _batch_error(arguments: dict[str, str]) -> str:
    event = load_event("s3BatchOperationEventSchemaV2.json")
    event["job"]["userArguments"] = arguments
    store = aws.S3Store(None)  # never reached: bad arguments fail every task before any storage call
    [result] = aws.handle_batch_operations(event, store=store)["results"]
    assert result["resultCode"] == "PermanentFailure"
    return result["resultString"]


@pytest.mark.parametrize("spec, text", BAD_TEXT, ids=[f"{s.name}={t!r}" for s, t in BAD_TEXT])
def test_a_bad_text_value_is_a_400_naming_the_option_every_way_in(spec: OptionSpec, text: str, capsys) -> None:
    named = f"option `{spec.name}` must be"
    error = _http_error({spec.name: text})
    assert error["code"] == "invalid_options" and named in error["message"]
    assert _batch_error({spec.name: text}).startswith(f"invalid_options: {named}")
    if spec in CLI_FLAGS:
        flag = "--" + spec.name.replace("_", "-")
        assert cli.main(["tests/fixtures/camera.png", flag, text]) == 1
        printed = json.loads(capsys.readouterr().err)["error"]
        assert printed["code"] == "invalid_options" and named in printed["message"]


@pytest.mark.parametrize("spec, value", [(s, v) for s in TABLE for v in bad_json(s)],
                         ids=[f"{s.name}={v!r}" for s in TABLE for v in bad_json(s)])
def test_a_bad_json_value_is_refused_naming_the_option(spec: OptionSpec, value: object) -> None:
    with pytest.raises(RequestError, match=f"option `{spec.name}` must be") as error:
        DEFAULT_OPTIONS.merged({spec.name: value})
    assert (error.value.code, error.value.status) == ("invalid_options", 400)


def test_query_parameters_outside_the_table_are_ignored() -> None:
    assert http_api.query_options({"cache": "123"}) is None
