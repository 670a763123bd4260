#!/usr/bin/env bash
# Deploy and run the Cloud Run backfill job (infra/gcp/job.yaml, entry `python -m handler.gcs_job`).
#
#   PROJECT=my-proj INPUT_BUCKET=my-proj-faceread-in OUTPUT_BUCKET=my-proj-faceread-out \
#     infra/gcp/deploy_job.sh [deploy|execute|all]      (default: all)
#
# deploy:  builds an image from handler/ + models/ + requirements.txt with Google's buildpacks
#          (gcloud builds submit --pack), pushes it to Artifact Registry (REPOSITORY, default
#          "faceread"), fills in job.yaml and applies it with `gcloud run jobs replace`.
# execute: starts one execution and waits; TASKS (default: job.yaml's 10) overrides the task count.
# The job's service account (SERVICE_ACCOUNT, default faceread-job) gets objectViewer on the input
# bucket and objectUser on the output bucket: the skip rule reads results' metadata (get), a
# result is rewritten (create, delete) and summaries are written under batch/summaries/. objectUser
# holds exactly those object permissions; objectAdmin would add setting objects' IAM policies
# (Google Cloud, "IAM roles for Cloud Storage"; tests/unit/test_gcp_permissions.py).
# The input bucket must exist (it holds what is backfilled); a missing output bucket is created
# like infra/gcp/deploy.sh creates it. The APIs the job needs are enabled first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ACTION="${1:-all}"
PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null)}"
REGION="${REGION:-europe-west1}"
REPOSITORY="${REPOSITORY:-faceread}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-faceread-job}"
SA_EMAIL="${SERVICE_ACCOUNT}@${PROJECT}.iam.gserviceaccount.com"
TASKS="${TASKS:-10}"
IMAGE="${REGION}-docker.pkg.dev/${PROJECT}/${REPOSITORY}/faceread-job:$(date +%Y%m%d%H%M%S)"

die() { echo "deploy_job.sh: $*" >&2; exit 1; }
[[ -n "$PROJECT" ]] || die "set PROJECT (or gcloud config set project ...)"
[[ -n "${INPUT_BUCKET:-}" && -n "${OUTPUT_BUCKET:-}" ]] || die "set INPUT_BUCKET and OUTPUT_BUCKET"
[[ "$INPUT_BUCKET" != "$OUTPUT_BUCKET" ]] || die "OUTPUT_BUCKET must differ from INPUT_BUCKET"
case "$ACTION" in deploy | execute | all) ;; *) die "unknown action '$ACTION' (deploy|execute|all)" ;; esac

deploy() {
  [[ -f "$ROOT/models/manifest.json" ]] || die "models/ is empty: run \`make models\` first"
  stage_root="$(mktemp -d)"
  trap 'rm -rf "$stage_root"' EXIT
  stage="$stage_root/app"
  # handler/ + models/ exactly as the Lambda zip and the container image have them
  # (infra/package's one selection; it also checks every model file's sha256).
  local python
  python="${PYTHON:-$([[ -x "$ROOT/.venv/bin/python" ]] && echo "$ROOT/.venv/bin/python" || echo python3)}"
  "$python" "$ROOT/infra/package" --app-only --out "$stage_root" >/dev/null ||
    die "staging handler/ and models/ failed (infra/package --app-only)"
  cp "$ROOT/requirements.txt" "$stage/"
  # Pin the buildpacks' Python to the functions' python312 (they pick the newest otherwise):
  # a .python-version file, Google Cloud "Build a Python application".
  echo 3.12 >"$stage/.python-version"
  # The buildpack's default process; job.yaml's `command` runs handler.gcs_job anyway.
  echo "web: python -m handler.gcs_job" >"$stage/Procfile"

  gcloud services enable run.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com \
    storage.googleapis.com iam.googleapis.com logging.googleapis.com --project="$PROJECT"
  gcloud storage buckets describe "gs://$INPUT_BUCKET" --project="$PROJECT" >/dev/null 2>&1 ||
    die "input bucket gs://$INPUT_BUCKET does not exist (or this account may not see it): nothing to backfill"
  if ! gcloud storage buckets describe "gs://$OUTPUT_BUCKET" --project="$PROJECT" >/dev/null 2>&1; then
    gcloud storage buckets create "gs://$OUTPUT_BUCKET" --project="$PROJECT" \
      --location="$(echo "$REGION" | tr '[:lower:]' '[:upper:]')" --uniform-bucket-level-access --public-access-prevention
  fi
  gcloud iam service-accounts describe "$SA_EMAIL" --project="$PROJECT" >/dev/null 2>&1 ||
    gcloud iam service-accounts create "$SERVICE_ACCOUNT" --project="$PROJECT" --display-name="faceread job"
  gcloud storage buckets add-iam-policy-binding "gs://$INPUT_BUCKET" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/storage.objectViewer >/dev/null
  gcloud storage buckets add-iam-policy-binding "gs://$OUTPUT_BUCKET" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/storage.objectUser >/dev/null
  gcloud artifacts repositories describe "$REPOSITORY" --project="$PROJECT" --location="$REGION" >/dev/null 2>&1 ||
    gcloud artifacts repositories create "$REPOSITORY" --project="$PROJECT" --location="$REGION" \
      --repository-format=docker
  gcloud builds submit "$stage" --project="$PROJECT" --region="$REGION" --pack="image=$IMAGE"

  sed -e "s|IMAGE_URL|$IMAGE|" -e "s|SERVICE_ACCOUNT_EMAIL|$SA_EMAIL|" \
    -e "s|INPUT_BUCKET_NAME|$INPUT_BUCKET|" -e "s|OUTPUT_BUCKET_NAME|$OUTPUT_BUCKET|" \
    "$ROOT/infra/gcp/job.yaml" >"$stage/job.yaml"
  gcloud run jobs replace "$stage/job.yaml" --project="$PROJECT" --region="$REGION"
}

execute() {
  gcloud run jobs execute faceread-backfill --project="$PROJECT" --region="$REGION" \
    --tasks="$TASKS" --wait
  echo "summaries: gs://$OUTPUT_BUCKET/batch/summaries/<execution>/task-*.summary.json"
}

case "$ACTION" in
  deploy) deploy ;;
  execute) execute ;;
  all) deploy && execute ;;
esac
