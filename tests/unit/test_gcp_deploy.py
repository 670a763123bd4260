"""infra/gcp/deploy.sh, run for real with a stand-in `gcloud` that records its calls.

Nothing can be deployed from a test, but what the script asks gcloud to do can be read:
private by default, the instance cap on every function, invokers granted, a public service only
when asked for, settings validated before the first gcloud call.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_files import DEPLOY_SH

GCLOUD = """#!/bin/sh
printf '%s\\n' "$*" >> "{calls}"
for arg in "$@"; do  # the uploaded source tree, as `gcloud functions deploy` would send it
  case "$arg" in --source=*) (cd "${{arg#--source=}}" && find . -type f | sort) > "{calls}.source"
    cp "${{arg#--source=}}/.python-version" "{calls}.python-version" ;; esac
done
case "$*" in
  "run services replace "*) cp "$4" "{rendered}" ;;
  "functions describe "*) echo https://faceread-http-demo.a.run.app ;;
  "storage service-agent "*) echo service-42@gs-project-accounts.iam.gserviceaccount.com ;;
esac
exit 0
"""


def deploy(tmp_path: Path, target: str, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run deploy.sh TARGET with a recording gcloud first on PATH; return the run and gcloud's calls."""
    calls = tmp_path / "calls"
    stub = tmp_path / "bin" / "gcloud"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(GCLOUD.format(calls=calls, rendered=tmp_path / "service.rendered.yaml"))
    stub.chmod(0o755)
    base = {"PATH": f"{stub.parent}:{os.environ['PATH']}", "HOME": str(tmp_path), "PROJECT": "demo",
            "INPUT_BUCKET": "demo-in", "OUTPUT_BUCKET": "demo-out"}
    done = subprocess.run(["bash", str(DEPLOY_SH), target], env={**base, **env},
                          capture_output=True, text=True, timeout=120)
    return done, calls.read_text().splitlines() if calls.exists() else []


def one(calls: list[str], prefix: str) -> str:
    (call,) = [c for c in calls if c.startswith(prefix)]
    return call


def test_http_function_is_private_and_capped_by_default(tmp_path: Path) -> None:
    done, calls = deploy(tmp_path, "all")
    assert done.returncode == 0, done.stderr
    http = one(calls, "functions deploy faceread-http")
    gcs = one(calls, "functions deploy faceread-gcs")
    for call in (http, gcs):
        assert "--no-allow-unauthenticated" in call.split()
        assert "--max-instances=10" in call.split() and "--concurrency=1" in call.split()
    assert "--allow-unauthenticated" not in http.split()
    assert not [c for c in calls if "allUsers" in c]
    assert "PUBLIC" not in done.stderr


def test_invokers_are_granted_run_invoker(tmp_path: Path) -> None:
    invokers = "user:ana@example.com serviceAccount:app@demo.iam.gserviceaccount.com"
    done, calls = deploy(tmp_path, "http", INVOKERS=invokers, MAX_INSTANCES="3")
    assert done.returncode == 0, done.stderr
    grants = [c for c in calls if c.startswith("run services add-iam-policy-binding faceread-http")]
    assert [g.split("--member=")[1].split()[0] for g in grants] == [
        "user:ana@example.com", "serviceAccount:app@demo.iam.gserviceaccount.com"]
    assert all("--role=roles/run.invoker" in g for g in grants)
    assert "--max-instances=3" in one(calls, "functions deploy faceread-http").split()


def test_public_only_when_asked_and_said_so(tmp_path: Path) -> None:
    done, calls = deploy(tmp_path, "http", ALLOW_UNAUTHENTICATED="true")
    assert done.returncode == 0, done.stderr
    assert "--allow-unauthenticated" in one(calls, "functions deploy faceread-http").split()
    assert "PUBLIC" in done.stderr


def test_cloud_run_service_gets_the_cap_and_settings(tmp_path: Path) -> None:
    done, calls = deploy(tmp_path, "run", MAX_INSTANCES="4", MAX_FACES="5")
    assert done.returncode == 0, done.stderr
    service = yaml.safe_load((tmp_path / "service.rendered.yaml").read_text())
    template = service["spec"]["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/maxScale"] == "4"
    assert template["spec"]["containerConcurrency"] == 1
    assert template["spec"]["serviceAccountName"] == "faceread-fn@demo.iam.gserviceaccount.com"
    settings = "--update-env-vars=^@^MAX_FACES=5@OUTPUT_BUCKET=demo-out@UPLOAD_BUCKET=demo-in"
    assert settings in one(calls, "run services update").split()
    assert not [c for c in calls if "allUsers" in c]


@pytest.mark.parametrize("env, expected", [
    ({"CONCURRENCY": "4", "CPU": "4"}, "NET_CLONES=4"),
    ({"CONCURRENCY": "4", "CPU": "4", "NET_CLONES": "2"}, "NET_CLONES=2"),
    ({}, None),  # one request per instance: one copy
])
def test_cloud_run_with_concurrency_gets_one_copy_of_the_nets_per_cpu(tmp_path: Path, env: dict,
                                                                      expected: str | None) -> None:
    done, calls = deploy(tmp_path, "run", **env)
    assert done.returncode == 0, done.stderr
    update = one(calls, "run services update")
    assert (expected in update) if expected else "NET_CLONES" not in update


@pytest.mark.parametrize("setting, message", [
    ("MIN_CONFIDENCE=1.5", "MIN_CONFIDENCE=1.5 is out of range"),
    ("OUTPUT_PREFIX=uploads/x/", "must not nest"),
    ("MAX_INSTANCES=0", "MAX_INSTANCES must be a positive integer"),
    ("ALLOW_UNAUTHENTICATED=yes", "ALLOW_UNAUTHENTICATED must be true or false"),
])
def test_bad_settings_stop_before_any_gcloud_call(tmp_path: Path, setting: str, message: str) -> None:
    name, value = setting.split("=", 1)
    done, calls = deploy(tmp_path, "http", **{name: value})
    assert done.returncode == 1
    assert message in done.stderr
    assert calls == []


def test_storage_trigger_may_invoke_the_private_function(tmp_path: Path) -> None:
    """Eventarc, "Roles and permissions for Cloud Run functions targets": the trigger's service
    account needs roles/run.invoker on an authenticated function, eventReceiver on the project,
    and the Cloud Storage service agent needs pubsub.publisher for direct Storage events."""
    done, calls = deploy(tmp_path, "gcs")
    assert done.returncode == 0, done.stderr
    gcs = one(calls, "functions deploy faceread-gcs").split()
    assert "--no-allow-unauthenticated" in gcs
    trigger_sa = next(a.split("=", 1)[1] for a in gcs if a.startswith("--trigger-service-account="))
    invoker = one(calls, "run services add-iam-policy-binding faceread-gcs").split()
    assert f"--member=serviceAccount:{trigger_sa}" in invoker and "--role=roles/run.invoker" in invoker
    # granted once the function (its Cloud Run service) exists
    assert calls.index(one(calls, "functions deploy faceread-gcs")) < calls.index(" ".join(invoker))
    receiver = one(calls, "projects add-iam-policy-binding demo --member=serviceAccount:" + trigger_sa)
    assert "--role=roles/eventarc.eventReceiver" in receiver.split()
    publisher = one(calls, "projects add-iam-policy-binding demo --member=serviceAccount:service-42@gs-project")
    assert "--role=roles/pubsub.publisher" in publisher.split()


def test_functions_ship_the_zips_handler_and_models(tmp_path: Path) -> None:
    """The uploaded source is infra/package's staged tree (calibration.json and the landmark
    model included, dev tools left out) plus main.py and requirements.txt."""
    import sys
    sys.path.insert(0, str(DEPLOY_SH.parents[1]))
    from package.stage import stage_app

    done, _ = deploy(tmp_path, "http")
    assert done.returncode == 0, done.stderr
    uploaded = set((tmp_path / "calls.source").read_text().split())
    stage_app(DEPLOY_SH.parents[2] / "handler", DEPLOY_SH.parents[2] / "models", tmp_path / "app")
    expected = {f"./{p.relative_to(tmp_path / 'app').as_posix()}" for p in (tmp_path / "app").rglob("*") if p.is_file()}
    assert "./models/calibration.json" in expected
    assert uploaded == expected | {"./main.py", "./requirements.txt", "./.python-version"}


JOB_GCLOUD = """#!/bin/sh
printf '%s\\n' "$*" >> "{calls}"
case "$*" in
  "builds submit "*) (cd "$3" && find . -type f | sort) > "{calls}.source"
    cp "$3/.python-version" "{calls}.python-version" ;;
  "storage buckets describe "*) case " $MISSING " in *" ${{4#gs://}} "*) exit 1 ;; esac ;;
esac
exit 0
"""


def deploy_job(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run deploy_job.sh deploy with a recording gcloud; MISSING names buckets gcloud says don't exist."""
    calls = tmp_path / "calls"
    stub = tmp_path / "bin" / "gcloud"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text(JOB_GCLOUD.format(calls=calls))
    stub.chmod(0o755)
    base = {"PATH": f"{stub.parent}:{os.environ['PATH']}", "HOME": str(tmp_path), "PROJECT": "demo",
            "INPUT_BUCKET": "demo-in", "OUTPUT_BUCKET": "demo-out", "MISSING": ""}
    done = subprocess.run(["bash", str(DEPLOY_SH.with_name("deploy_job.sh")), "deploy"], env={**base, **env},
                          capture_output=True, text=True, timeout=120)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_backfill_job_image_is_built_from_the_same_tree(tmp_path: Path) -> None:
    """infra/gcp/deploy_job.sh builds its image (buildpacks) from infra/package's staged tree too."""
    import sys
    sys.path.insert(0, str(DEPLOY_SH.parents[1]))
    from package.stage import stage_app

    done, calls = deploy_job(tmp_path)
    assert done.returncode == 0, done.stderr
    stage_app(DEPLOY_SH.parents[2] / "handler", DEPLOY_SH.parents[2] / "models", tmp_path / "app")
    expected = {f"./{p.relative_to(tmp_path / 'app').as_posix()}" for p in (tmp_path / "app").rglob("*") if p.is_file()}
    uploaded = set((tmp_path / "calls.source").read_text().split())
    assert uploaded == expected | {"./requirements.txt", "./Procfile", "./.python-version"}
    viewer = one(calls, "storage buckets add-iam-policy-binding gs://demo-in").split()
    assert viewer[-1] == "--role=roles/storage.objectViewer"
    user = one(calls, "storage buckets add-iam-policy-binding gs://demo-out").split()
    assert user[-1] == "--role=roles/storage.objectUser"  # get, list, create, delete: no IAM admin
    assert (tmp_path / "calls.python-version").read_text().strip() == "3.12"


def test_backfill_job_checks_its_buckets(tmp_path: Path) -> None:
    """No input bucket: stop before building anything. No output bucket: create it, private."""
    done, calls = deploy_job(tmp_path, MISSING="demo-in")
    assert done.returncode == 1 and "gs://demo-in does not exist" in done.stderr
    assert not [c for c in calls if c.startswith("builds submit")]
    (tmp_path / "b").mkdir()
    done, calls = deploy_job(tmp_path / "b", MISSING="demo-out")
    assert done.returncode == 0, done.stderr
    create = one(calls, "storage buckets create gs://demo-out").split()
    assert "--uniform-bucket-level-access" in create and "--public-access-prevention" in create
    assert calls.index(" ".join(create)) < calls.index(one(calls, "builds submit"))


@pytest.mark.parametrize("target", ["all", "http", "gcs", "buckets", "run"])
def test_every_target_enables_the_apis_first_and_pins_python(tmp_path: Path, target: str) -> None:
    done, calls = deploy(tmp_path, target)
    assert done.returncode == 0, done.stderr
    enable = calls[0].split()
    assert calls[0].startswith("services enable ")
    needed = {"run.googleapis.com", "cloudbuild.googleapis.com", "artifactregistry.googleapis.com"}
    needed |= {"cloudfunctions.googleapis.com", "eventarc.googleapis.com"} if target in ("all", "gcs") else set()
    assert needed <= set(enable)
    for call in calls:
        if call.startswith("functions deploy "):
            assert "--runtime=python312" in call.split()
    if target in ("all", "http", "gcs"):
        assert (tmp_path / "calls.python-version").read_text().strip() == "3.12"


def test_run_and_http_deploy_different_services(tmp_path: Path) -> None:
    """`deploy.sh run` must never replace the `deploy.sh http` function's Cloud Run service."""
    done, run_calls = deploy(tmp_path, "run")
    assert done.returncode == 0, done.stderr
    service = yaml.safe_load((tmp_path / "service.rendered.yaml").read_text())["metadata"]["name"]
    assert service != "faceread-http"
    assert not [c for c in run_calls if "faceread-http" in c.split()]
    assert one(run_calls, "run services update ").split()[3] == service


def test_signed_uploads_get_signblob_on_the_account_itself_and_a_prefix_only_grant(tmp_path: Path) -> None:
    """POST /uploads on Cloud Run signs through IAM signBlob: roles/iam.serviceAccountTokenCreator on the
    function's own account (never project-wide); the URL's write right only under uploads/http/."""
    done, calls = deploy(tmp_path, "http")
    assert done.returncode == 0, done.stderr
    sign = one(calls, "iam service-accounts add-iam-policy-binding").split()
    assert sign[3] == "faceread-fn@demo.iam.gserviceaccount.com"  # the binding is on the account itself
    assert "--member=serviceAccount:faceread-fn@demo.iam.gserviceaccount.com" in sign
    assert "--role=roles/iam.serviceAccountTokenCreator" in sign
    assert not [c for c in calls if c.startswith("projects add-iam-policy-binding") and "TokenCreator" in c]
    create = one(calls, "storage buckets add-iam-policy-binding gs://demo-in")
    assert "--role=roles/storage.objectCreator" in create
    assert 'startsWith("projects/_/buckets/demo-in/objects/uploads/http/")' in create
    bucket = one(calls, "storage buckets update gs://demo-in")
    assert "--cors-file=" in bucket and "--lifecycle-file=" in bucket
