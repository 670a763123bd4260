"""Google Cloud grants, checked against the storage calls the code really makes.

No Cloud Storage emulator enforces IAM, so this keeps one table instead: the storage calls, recorded
from the HTTP requests the real flows send to gcp-storage-emulator (the Cloud Storage trigger's
per-object flow and the Cloud Run backfill job), each mapped to its JSON API method and to the IAM
permissions Google lists for that method; then every deploy script's bucket grants, read from a run of
the script against a recording `gcloud`, must hold those permissions through the predefined roles'
contents, and be the smallest predefined role that does.

Sources (Google Cloud documentation):
- "IAM permissions for JSON methods", https://cloud.google.com/storage/docs/access-control/iam-json :
  objects.get needs storage.objects.get; objects.insert storage.objects.create, and also
  storage.objects.delete when an object of that name already exists (the insert replaces it);
  objects.delete storage.objects.delete; objects.list storage.objects.list.
- "IAM roles for Cloud Storage", https://cloud.google.com/storage/docs/access-control/iam-roles :
  Storage Object Creator "does not give permission to view, delete, or replace objects"; Object Viewer
  reads and lists; Object User creates, reads, lists, updates, restores and deletes objects (no IAM
  policy); Object Admin is all of that plus the objects' IAM policies and retention.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import requests
from deploy_files import DEPLOY_SH
from helpers import fixture_bytes, load_event
from http_client import call
from servers import ROOT, functions_framework, gcs_emulator

from handler import gcs_store, http_api
from handler.config import SETTINGS
from handler.http_api import HttpRequest, handle
from handler.uploads import GcsUploads

# JSON API method (as recorded) -> the IAM permissions it needs ("IAM permissions for JSON methods").
METHOD_PERMISSIONS: dict[str, frozenset[str]] = {
    "objects.get": frozenset({"storage.objects.get"}),
    "objects.list": frozenset({"storage.objects.list"}),
    "objects.insert": frozenset({"storage.objects.create"}),
    "objects.insert (replacing)": frozenset({"storage.objects.create", "storage.objects.delete"}),
    "objects.delete": frozenset({"storage.objects.delete"}),
}

# The object permissions each predefined role holds ("IAM roles for Cloud Storage"), smallest first.
_USER = {"storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list",
         "storage.objects.update", "storage.objects.restore"}
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "roles/storage.objectCreator": frozenset({"storage.objects.create"}),
    "roles/storage.objectViewer": frozenset({"storage.objects.get", "storage.objects.list"}),
    "roles/storage.objectUser": frozenset(_USER),
    "roles/storage.objectAdmin": frozenset(_USER | {"storage.objects.getIamPolicy", "storage.objects.setIamPolicy",
                                                    "storage.objects.setRetention",
                                                    "storage.objects.overrideUnlockedRetention"}),
}

IN, OUT = "perm-in", "perm-out"


class RecordingProxy(ThreadingHTTPServer):
    """A pass-through proxy in front of the emulator (STORAGE_EMULATOR_HOST points here): each object request
    of any process becomes (bucket, JSON method). An insert is `objects.insert (replacing)` when an object of
    that name is live before it is forwarded."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.calls = upstream, []
        super().__init__(("127.0.0.1", 0), _Forward)

    def _live(self, bucket: str, name: str) -> bool:
        return requests.get(f"{self.upstream}/storage/v1/b/{bucket}/o/{quote(name, safe='')}", timeout=10).ok

    def record(self, method: str, url: str, body: bytes) -> None:
        """(bucket, JSON method, object name); the XML API's PUT and GET of an object (signed URLs) need
        the same permissions as objects.insert and objects.get ("IAM permissions for XML methods")."""
        parts = urlsplit(url)
        path, query = unquote(parts.path), parse_qs(parts.query)
        upload = re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", path)
        one = re.fullmatch(r"(?:/download)?/storage/v1/b/([^/]+)/o/(.+)", path)
        listing = re.fullmatch(r"/storage/v1/b/([^/]+)/o", path)
        xml = re.fullmatch(r"/(perm-[^/]+)/(.+)", path)
        if upload and method == "POST":
            # multipart uploads name the object in their JSON part, simple ones in the query
            named = re.search(rb'"name":\s*"((?:[^"\\]|\\.)*)"', body)
            name = query["name"][0] if "name" in query else json.loads(b'"' + named.group(1) + b'"')
            replacing = self._live(upload.group(1), name)
            self.calls.append((upload.group(1), "objects.insert (replacing)" if replacing else "objects.insert", name))
        elif (one or xml) and method in ("GET", "DELETE"):
            bucket, name = (one or xml).groups()
            self.calls.append((bucket, "objects.get" if method == "GET" else "objects.delete", name))
        elif xml and method == "PUT":
            bucket, name = xml.groups()
            self.calls.append((bucket, "objects.insert (replacing)" if self._live(bucket, name) else "objects.insert",
                               name))
        elif listing and method == "GET":
            self.calls.append((listing.group(1), "objects.list", ""))
        else:
            self.calls.append(("?", f"{method} {path}", ""))  # a call the table lacks: fails the check below


class _Forward(BaseHTTPRequestHandler):
    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/perm-" in self.path:  # the flows' buckets (the test's own setup calls go straight to the emulator)
            self.server.record(self.command, self.path, body)
        skip = {"host", "content-length", "connection", "accept-encoding"}
        upstream = requests.request(self.command, self.server.upstream + self.path, data=body, timeout=60,
                                    headers={k: v for k, v in self.headers.items() if k.lower() not in skip})
        self.send_response(upstream.status_code)
        for k, v in upstream.headers.items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "content-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, *args) -> None:
        pass


def deliver(url: str, blob, generation: int | None = None) -> int:
    """POST a structured-mode finalized CloudEvent for `blob`, as Eventarc does."""
    sample = load_event("gcsFinalizedCloudEvent.json")
    event = {**sample["attributes"], "subject": f"objects/{blob.name}",
             "data": {**sample["data"], "bucket": IN, "name": blob.name, "size": str(blob.size),
                      "etag": blob.etag, "generation": str(generation or blob.generation)}}
    status, _, _ = call(url, json.dumps(event).encode(), "POST", {"Content-Type": "application/cloudevents+json"})
    return status


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[tuple[str, str]]]:
    """The storage calls of each deployed process, run for real against the emulator: {script: [(bucket, method)]}."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with gcs_emulator() as upstream:
        proxy = RecordingProxy(upstream)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        host = f"http://127.0.0.1:{proxy.server_address[1]}"
        mp = pytest.MonkeyPatch()
        mp.setenv("STORAGE_EMULATOR_HOST", upstream)
        admin = storage.Client(project="local", credentials=AnonymousCredentials())
        inp = admin.create_bucket(IN)
        admin.create_bucket(OUT)
        env = {"STORAGE_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": "local", "OUTPUT_BUCKET": OUT}
        flows: dict[str, list] = {}

        # deploy.sh's function (faceread-gcs): every path of the per-object flow, through functions-framework.
        with functions_framework("gcs_finalized", "cloudevent", env=env, ready_path="/") as url:
            inp.blob("uploads/a.png").upload_from_string(fixture_bytes("camera.png"))
            first = inp.get_blob("uploads/a.png")
            assert deliver(url, first) == 200  # the first result
            assert deliver(url, first) == 200  # a redelivered event: unchanged
            inp.blob("uploads/a.png").upload_from_string(fixture_bytes("astronaut.png"))
            assert deliver(url, inp.get_blob("uploads/a.png")) == 200  # the photo replaced: the result rewritten
            assert deliver(url, inp.get_blob("uploads/a.png"), first.generation) == 200  # the older one's late event
            inp.blob("uploads/notes.txt").upload_from_string(b"not a photo")
            assert deliver(url, inp.get_blob("uploads/notes.txt")) == 200  # an error result
        result = json.loads(admin.bucket(OUT).blob("results/a.png.json").download_as_bytes())
        assert result["faces"][0]["gender"]["value"] == "female"  # the flow ran through to the newer photo

        # deploy.sh's HTTP function: POST /uploads, the caller's signed PUT (it acts with the signer's
        # permissions), the trigger, then GET /uploads/<id> and the caller's signed GET of the image.
        mp.setenv("STORAGE_EMULATOR_HOST", host)  # the signed URLs point at the proxy too
        mp.setattr(gcs_store, "_gcs_client", None)  # the process's client, made as the HTTP function makes it
        client = gcs_store.gcs_client()
        mp.setattr(http_api, "SETTINGS", dataclasses.replace(SETTINGS, upload_bucket=IN, output_bucket=OUT))
        presign = lambda: GcsUploads(client, signing_credentials())  # noqa: E731
        grant = json.loads(handle(HttpRequest("POST", "/uploads", body=b"{}"), presign).body)
        put = grant["upload"]
        assert requests.put(put["url"], data=fixture_bytes("camera.png"), headers=put["headers"], timeout=30).ok
        with functions_framework("gcs_finalized", "cloudevent", env=env, ready_path="/") as url:
            assert deliver(url, inp.get_blob(grant["key"])) == 200
        done = json.loads(handle(HttpRequest("GET", grant["poll"]), presign).body)
        assert requests.get(done["image_url"], timeout=30).content[:2] == b"\xff\xd8"
        flows["deploy.sh"], proxy.calls = proxy.calls, []

        # deploy_job.sh's Cloud Run job: list, process, summary; run twice (the second rewrites the summary).
        for _ in range(2):
            subprocess.run([sys.executable, "-m", "handler.gcs_job", "--bucket", IN], cwd=ROOT, check=True,
                           env={**os.environ, **env, "CLOUD_RUN_EXECUTION": "perm"}, capture_output=True, timeout=300)
        flows["deploy_job.sh"] = proxy.calls
        proxy.shutdown()
        mp.undo()
    return flows


def signing_credentials():
    from google.oauth2 import service_account
    from upload_stack import signing_key

    return service_account.Credentials.from_service_account_info(signing_key())


GCLOUD = """#!/bin/sh
printf '%s\\n' "$*" >> "{calls}"
case "$*" in "storage service-agent "*) echo service-42@gs-project-accounts.iam.gserviceaccount.com ;; esac
exit 0
"""


def bucket_grants(script: str, action: str, tmp_path: Path) -> list[tuple[str, str, str]]:
    """[(bucket, role, object-name prefix or "")] the service account gets, from a run with a recording gcloud;
    a grant's IAM condition `resource.name.startsWith("projects/_/buckets/B/objects/P")` limits it to prefix P."""
    calls = tmp_path / f"{script}.calls"
    stub = tmp_path / "bin" / "gcloud"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(GCLOUD.format(calls=calls))
    stub.chmod(0o755)
    env = {"PATH": f"{stub.parent}:{os.environ['PATH']}", "HOME": str(tmp_path), "PROJECT": "demo",
           "INPUT_BUCKET": IN, "OUTPUT_BUCKET": OUT}
    done = subprocess.run(["bash", str(DEPLOY_SH.with_name(script)), action], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    grants = []
    for line in calls.read_text().splitlines():
        found = re.match(r"storage buckets add-iam-policy-binding gs://(\S+) .*--role=(\S+)", line)
        if found and "serviceAccount:faceread-" in line:
            condition = re.search(r'startsWith\("projects/_/buckets/[^/]+/objects/([^"]*)"\)', line)
            grants.append((found.group(1), found.group(2), condition.group(1) if condition else ""))
    return grants


def covers(grant: tuple[str, str, str], call: tuple[str, str, str]) -> bool:
    bucket, role, prefix = grant
    return (bucket == call[0] and call[2].startswith(prefix)
            and METHOD_PERMISSIONS[call[1]] <= ROLE_PERMISSIONS[role])


def test_the_flows_make_the_calls_the_table_names(recorded) -> None:
    """Every recorded call is in the table, and the recording saw every row (a row no flow uses is stale)."""
    used = {method for calls in recorded.values() for _, method, _ in calls}
    assert used == set(METHOD_PERMISSIONS), used ^ set(METHOD_PERMISSIONS)


# deploy.sh `all` deploys both functions (one service account): the trigger's and the HTTP routes' calls.
@pytest.mark.parametrize("script, action", [("deploy.sh", "all"), ("deploy_job.sh", "deploy")])
def test_each_grant_is_needed_and_the_smallest_role_for_its_calls(recorded, script, action, tmp_path) -> None:
    grants = bucket_grants(script, action, tmp_path)
    calls = sorted(set(recorded[script]))
    assert {c[1] for c in calls} <= set(METHOD_PERMISSIONS), "a storage call missing from the table"
    for made in calls:  # nothing missing
        assert any(covers(g, made) for g in grants), f"{script}: no grant covers {made} ({grants})"
    for grant in grants:  # nothing surplus: each grant is the only cover of some call, and no bigger than those need
        alone = [c for c in calls if covers(grant, c) and not any(covers(g, c) for g in grants if g != grant)]
        assert alone, f"{script}: {grant} is needed by no call the code makes"
        permissions = set().union(*(METHOD_PERMISSIONS[c[1]] for c in alone))
        smallest = next(role for role, held in ROLE_PERMISSIONS.items() if permissions <= held)
        assert grant[1] == smallest, f"{script}: {grant} where {smallest} serves"
