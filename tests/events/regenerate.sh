#!/usr/bin/env bash
# Regenerate the AWS event samples in this folder with the real generator,
# `sam local generate-event` (AWS SAM CLI; no Docker, no AWS account needed).
#
#   python3 -m venv /tmp/samvenv && /tmp/samvenv/bin/pip install aws-sam-cli
#   SAM=/tmp/samvenv/bin/sam tests/events/regenerate.sh
#
# The generator emits AWS's documented sample shapes with our values filled in.
# A few fields are then set to what API Gateway / S3 put there for *our*
# routes (see tests/events/README.md, "Post-processing"): the generator cannot know the
# route keys of our HTTP API, and it URL-encodes S3 keys with quote() where
# S3 itself uses the form encoding (space -> "+").
#
# Hand-written files (not touched here): lambdaFunctionUrlEvent.json,
# warmupEvent.json, gcsFinalizedCloudEvent.json.
set -euo pipefail

SAM="${SAM:-/tmp/samvenv/bin/sam}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
export SAM_CLI_TELEMETRY=0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Run from an empty folder so no samconfig.toml is picked up.
cd "$work"

gen() { "$SAM" local generate-event "$@"; }
# HTTP API's literal "$default" stage name.
# shellcheck disable=SC2016
DEFAULT_STAGE='$default'

# Bodies are tiny placeholders: the generator base64-encodes --body and sets
# isBase64Encoded=true, which is what API Gateway does for a binary body.
# Tests substitute a real JPEG.
gen apigateway aws-proxy --method POST --path analyze --resource /analyze \
    --stage prod --body PLACEHOLDER --querystringparameters '{}' >v1.json
gen apigateway http-api-proxy --method POST --path analyze --stage "$DEFAULT_STAGE" \
    --body PLACEHOLDER >v2.json
gen apigateway http-api-proxy --method GET --path '' --stage "$DEFAULT_STAGE" \
    --body '' >v2get.json
# Raw key "uploads/My Photoé.jpg" (bucket faceread-input); see post-processing.
gen s3 put --region us-east-1 --bucket faceread-input --key 'uploads/My Photoé.jpg' >s3a.json
gen s3 put --region us-east-1 --bucket faceread-input --key 'uploads/first.jpg' >s3b.json
gen s3 put --region us-east-1 --bucket faceread-input --key 'uploads/team/second photo.png' >s3c.json
gen cloudwatch scheduled-event --region us-east-1 --account-id 123456789012 \
    --rule faceread-warm-ping >sched.json

"$PY" - "$HERE" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
load = lambda name: json.loads(Path(name).read_text())


def dump(name, obj):
    (out / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


# REST API (payload 1.0), POST /analyze as a non-proxy resource.
v1 = load("v1.json")
v1["pathParameters"] = None            # /analyze has no path parameters
v1["queryStringParameters"] = None     # API Gateway sends null, not {}, when there are none
v1["multiValueQueryStringParameters"] = None
v1["stageVariables"] = None
v1["headers"]["Content-Type"] = "image/jpeg"
v1["multiValueHeaders"]["Content-Type"] = ["image/jpeg"]
dump("apiGatewayProxyEvent.json", v1)


# HTTP API (payload 2.0): explicit routes, so routeKey is "METHOD /path".
def v2_route(ev, method, path):
    key = f"{method} {path}"
    ev["routeKey"] = key
    ev["requestContext"]["routeKey"] = key
    ev["rawQueryString"] = ""
    ev.pop("queryStringParameters", None)
    ev.pop("pathParameters", None)
    ev.pop("stageVariables", None)
    ev["requestContext"]["domainName"] = "abc123defg.execute-api.us-east-1.amazonaws.com"
    ev["requestContext"]["domainPrefix"] = "abc123defg"
    ev["requestContext"]["apiId"] = "abc123defg"
    return ev


v2 = v2_route(load("v2.json"), "POST", "/analyze")
v2["headers"]["content-type"] = "image/jpeg"
dump("apiGatewayProxyV2Event.json", v2)

v2get = v2_route(load("v2get.json"), "GET", "/")
v2get.pop("body", None)                # a GET carries no body
v2get["isBase64Encoded"] = False
dump("apiGatewayProxyV2GetRoot.json", v2get)

# S3: S3 form-encodes keys (space -> "+", literal "+" -> "%2B"); the
# generator uses quote() (space -> "%20"). Convert to S3's encoding.
def s3_encode(ev):
    for rec in ev["Records"]:
        rec["s3"]["object"]["key"] = rec["s3"]["object"]["key"].replace("%20", "+")
    return ev


one = s3_encode(load("s3a.json"))
assert one["Records"][0]["s3"]["object"]["key"] == "uploads/My+Photo%C3%A9.jpg", one
dump("s3EventEncodedKey.json", one)

many = s3_encode(load("s3b.json"))
many["Records"] += s3_encode(load("s3c.json"))["Records"]
dump("s3EventMultipleRecords.json", many)

dump("scheduledEvent.json", load("sched.json"))
EOF
echo "regenerated AWS events in $HERE"
