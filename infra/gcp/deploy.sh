#!/usr/bin/env bash
# Deploy faceread to Google Cloud as two Cloud Run functions (2nd gen) built
# from the functions-framework targets in handler/gcp.py:
#
#   faceread-http  HTTP target `http_analyze`   (POST /analyze, GET /, GET /health)
#   faceread-gcs   CloudEvent target `gcs_finalized`, triggered by
#                  google.cloud.storage.object.v1.finalized on INPUT_BUCKET;
#                  results go to OUTPUT_BUCKET, a different bucket, so a written
#                  result can never re-trigger the function.
#
# Usage (from anywhere):
#   PROJECT=my-proj INPUT_BUCKET=my-proj-faceread-in OUTPUT_BUCKET=my-proj-faceread-out \
#     infra/gcp/deploy.sh [all|http|gcs|buckets|run]      (default: all)
#
# `run` is the declarative alternative for the HTTP target, deployed as its own service
# `faceread-run` (never replacing the `faceread-http` function's service): it builds an image
# with Google's buildpacks (GOOGLE_FUNCTION_TARGET=http_analyze), pushes it to
# Artifact Registry (REPOSITORY, default "faceread") and applies
# infra/gcp/service.yaml with `gcloud run services replace`.
#
# Optional environment: REGION (europe-west1), SERVICE_ACCOUNT (faceread-fn),
# MIN_INSTANCES (1), MAX_INSTANCES (10), MEMORY (2Gi), CPU (2), TIMEOUT (60s),
# CONCURRENCY (1), ALLOW_UNAUTHENTICATED (false), INVOKERS, and the handler
# settings in SETTINGS below (unset ones keep the handler's defaults; they are
# validated with handler/config.py before anything is deployed).
#
# Who may call faceread-http: nobody but the project's owners by default
# (--no-allow-unauthenticated). Grant callers roles/run.invoker with
#   INVOKERS="user:ana@example.com serviceAccount:app@my-proj.iam.gserviceaccount.com" infra/gcp/deploy.sh http
# and call with an identity token:
#   curl -H "Authorization: Bearer $(gcloud auth print-identity-token)" \
#        -H 'Content-Type: image/jpeg' --data-binary @photo.jpg "$URL/analyze"
# ALLOW_UNAUTHENTICATED=true makes it PUBLIC (allUsers): a deliberate demo only.
#
# Spending cap: MAX_INSTANCES x CONCURRENCY requests at once, the same cap as the
# Lambda stack's ReservedConcurrency; beyond it Cloud Run answers 429 to HTTP
# callers and Eventarc redelivers Cloud Storage events later (--retry).
#
# Eventarc cannot filter Cloud Storage events by key prefix, only by bucket:
# the handler itself ignores objects outside INPUT_PREFIX.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${1:-all}"

PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null)}"
REGION="${REGION:-europe-west1}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-faceread-fn}"
SA_EMAIL="${SERVICE_ACCOUNT}@${PROJECT}.iam.gserviceaccount.com"
MIN_INSTANCES="${MIN_INSTANCES:-1}"
MAX_INSTANCES="${MAX_INSTANCES:-10}"
MEMORY="${MEMORY:-2Gi}"
CPU="${CPU:-2}"
TIMEOUT="${TIMEOUT:-60s}"
# One request per instance: OpenCV DNN nets are shared per process and a
# forward pass already uses the instance's CPUs.
CONCURRENCY="${CONCURRENCY:-1}"
# Requests sharing an instance get one copy of each net per CPU instead of
# queueing for one (docs/decisions.md, "Thread safety": NET_CLONES); at CONCURRENCY 1 a copy is all it needs.
if ((CONCURRENCY > 1)) && [[ -z "${NET_CLONES:-}" && "$CPU" =~ ^[0-9]+$ ]]; then
  NET_CLONES="$CPU"
fi
ALLOW_UNAUTHENTICATED="${ALLOW_UNAUTHENTICATED:-false}"
INVOKERS="${INVOKERS:-}"
# Every setting handler/config.py reads except MODEL_DIR (the staged models/ is
# used), OUTPUT_BUCKET and UPLOAD_BUCKET (set from OUTPUT_BUCKET and INPUT_BUCKET below). A test keeps this list
# equal to what config.py reads.
SETTINGS=(MIN_CONFIDENCE MAX_FACES MAX_IMAGE_BYTES MAX_PIXELS MIN_GENDER_CONFIDENCE MIN_FACE_PX MIN_SHARPNESS JPEG_QUALITY ANNOTATE_MAX_SIDE DETECT_MAX_SIDE DETECT_THREADS OUTPUT_PREFIX INPUT_PREFIX CORS_ALLOW_ORIGIN LOG_LEVEL WRITE_REDACTED NET_CLONES)

# The Python of every build: --runtime for the functions, .python-version for the buildpacks.
RUNTIME=python312
PYTHON_VERSION=3.12
# What `run` deploys: its own Cloud Run service, so that it never replaces the `http` function's.
RUN_SERVICE=faceread-run
# The APIs a new project must enable first (Cloud Run functions: "Deploy a Cloud Run function";
# Eventarc for the Storage trigger; Artifact Registry and Cloud Build for every build).
APIS=(cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com
  artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com storage.googleapis.com
  iam.googleapis.com logging.googleapis.com)

die() { echo "deploy.sh: $*" >&2; exit 1; }
[[ -n "$PROJECT" ]] || die "set PROJECT (or gcloud config set project ...)"
case "$TARGET" in all | http | gcs | buckets | run) ;; *) die "unknown target '$TARGET' (all|http|gcs|buckets|run)" ;; esac
[[ "$ALLOW_UNAUTHENTICATED" == true || "$ALLOW_UNAUTHENTICATED" == false ]] ||
  die "ALLOW_UNAUTHENTICATED must be true or false"
[[ "$MAX_INSTANCES" =~ ^[1-9][0-9]*$ ]] || die "MAX_INSTANCES must be a positive integer (the spending cap)"

# The same validation the function runs at start-up, here before anything is
# deployed: a bad value stops this script instead of every cold start. Only
# handler.config and handler.errors are loaded (not the nets).
PYTHON="${PYTHON:-$([[ -x "$ROOT/.venv/bin/python" ]] && echo "$ROOT/.venv/bin/python" || echo python3)}"
"$PYTHON" - "$ROOT" <<'EOF' || die "fix the setting above"
import sys
import types

package = types.ModuleType("handler")
package.__path__ = [sys.argv[1] + "/handler"]
sys.modules["handler"] = package
from handler.errors import ConfigError

try:
    import handler.config  # noqa: F401 - importing it validates the environment
except ConfigError as error:
    sys.exit(f"deploy.sh: {error}")
EOF
if [[ "$TARGET" != http && "$TARGET" != run ]]; then
  [[ -n "${INPUT_BUCKET:-}" && -n "${OUTPUT_BUCKET:-}" ]] || die "set INPUT_BUCKET and OUTPUT_BUCKET"
  [[ "$INPUT_BUCKET" != "$OUTPUT_BUCKET" ]] || die "OUTPUT_BUCKET must differ from INPUT_BUCKET"
fi

# --- environment variables for the functions --------------------------------
env_vars=()
for name in "${SETTINGS[@]}"; do
  if [[ -n "${!name:-}" ]]; then
    env_vars+=("${name}=${!name}")
  fi
done
if [[ -n "${OUTPUT_BUCKET:-}" ]]; then
  env_vars+=("OUTPUT_BUCKET=${OUTPUT_BUCKET}")
fi
# POST /uploads signs uploads into the trigger's bucket (handler/uploads.py).
if [[ -n "${INPUT_BUCKET:-}" ]]; then
  env_vars+=("UPLOAD_BUCKET=${INPUT_BUCKET}")
fi
# "^@^" switches gcloud's list delimiter to "@" so values may contain commas.
env_flag=()
if ((${#env_vars[@]})); then
  joined="$(IFS=@; echo "${env_vars[*]}")"
  env_flag=("--set-env-vars=^@^${joined}")
fi

# --- source staging ----------------------------------------------------------
# The Python buildpack loads main.py from the source root; a two-line shim
# re-exports the targets so `handler` is imported as a package (handler/gcp.py
# loaded as a file would lose its package and its absolute imports).
stage_root="$(mktemp -d)"
trap 'rm -rf "$stage_root"' EXIT
stage="$stage_root/app"
stage_source() {
  [[ -f "$ROOT/handler/gcp.py" ]] || die "handler/gcp.py not found"
  [[ -f "$ROOT/models/manifest.json" ]] || die "models/ is empty: run \`make models\` first"
  # handler/ + models/ exactly as the Lambda zip and the container image have them: staged by
  # infra/package's one selection (it also checks every model file's sha256).
  "$PYTHON" "$ROOT/infra/package" --app-only --out "$stage_root" >/dev/null ||
    die "staging handler/ and models/ failed (infra/package --app-only)"
  cp "$ROOT/requirements.txt" "$stage/requirements.txt"
  # The buildpacks otherwise pick the newest Python (`run` builds with `gcloud builds submit --pack`,
  # which has no --runtime): pin the functions' python312. Google Cloud, "Build a Python
  # application": a .python-version file in the source root (https://cloud.google.com/docs/buildpacks/python).
  echo "$PYTHON_VERSION" >"$stage/.python-version"
  cat >"$stage/main.py" <<'EOF'
"""Cloud Run functions entry module (generated by infra/gcp/deploy.sh)."""
from handler.gcp import gcs_finalized, http_analyze  # noqa: F401
EOF
}

common_flags=(
  --gen2
  --project="$PROJECT"
  --region="$REGION"
  --runtime="$RUNTIME"
  --source="$stage"
  --memory="$MEMORY"
  --cpu="$CPU"
  --timeout="$TIMEOUT"
  --concurrency="$CONCURRENCY"
  --min-instances="$MIN_INSTANCES"
  --max-instances="$MAX_INSTANCES"
  --service-account="$SA_EMAIL"
  "${env_flag[@]}"
)

enable_apis() {
  gcloud services enable "${APIS[@]}" --project="$PROJECT"
}

ensure_service_account() {
  if ! gcloud iam service-accounts describe "$SA_EMAIL" --project="$PROJECT" >/dev/null 2>&1; then
    gcloud iam service-accounts create "$SERVICE_ACCOUNT" --project="$PROJECT" \
      --display-name="faceread functions"
  fi
}

ensure_buckets() {
  local location
  location="$(echo "$REGION" | tr '[:lower:]' '[:upper:]')"
  for b in "$INPUT_BUCKET" "$OUTPUT_BUCKET"; do
    if ! gcloud storage buckets describe "gs://$b" --project="$PROJECT" >/dev/null 2>&1; then
      gcloud storage buckets create "gs://$b" --project="$PROJECT" --location="$location" \
        --uniform-bucket-level-access --public-access-prevention
    fi
  done
  # Least privilege (tests/unit/test_gcp_permissions.py): read the input bucket; on the output bucket
  # read a result's metadata (the skip rule), create, replace (storage.objects.delete too) and delete
  # replaced images: roles/storage.objectUser, the smallest predefined role with all four.
  gcloud storage buckets add-iam-policy-binding "gs://$INPUT_BUCKET" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/storage.objectViewer >/dev/null
  gcloud storage buckets add-iam-policy-binding "gs://$OUTPUT_BUCKET" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/storage.objectUser >/dev/null
}

# Startup CPU boost is a Cloud Run setting: the function's underlying service
# gets it after `gcloud functions deploy` (which has no such flag).
cpu_boost() {
  gcloud run services update "$1" --project="$PROJECT" --region="$REGION" --cpu-boost >/dev/null
}

# roles/run.invoker for each member of INVOKERS on the HTTP service named $1.
grant_invokers() {
  local member
  for member in $INVOKERS; do
    gcloud run services add-iam-policy-binding "$1" --project="$PROJECT" --region="$REGION" \
      --member="$member" --role=roles/run.invoker >/dev/null
  done
}

# POST /uploads (handler/uploads.py) signs V4 URLs as the function's account. Cloud Run credentials
# hold no key, so the library signs through the IAM Credentials signBlob API, which needs
# iam.serviceAccounts.signBlob on the account itself (roles/iam.serviceAccountTokenCreator, granted
# on this one account, not project-wide). A signed URL carries the signer's permissions: object
# creation on the input bucket, only under the upload route's prefix (an IAM condition; the
# buckets use uniform bucket-level access, which conditions need).
grant_upload_signing() {
  [[ -n "${INPUT_BUCKET:-}" ]] || return 0
  gcloud iam service-accounts add-iam-policy-binding "$SA_EMAIL" --project="$PROJECT" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/iam.serviceAccountTokenCreator >/dev/null
  local prefix="${INPUT_PREFIX:-uploads/}http/"
  gcloud storage buckets add-iam-policy-binding "gs://$INPUT_BUCKET" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/storage.objectCreator \
    --condition="expression=resource.name.startsWith(\"projects/_/buckets/$INPUT_BUCKET/objects/$prefix\"),title=faceread-presigned-uploads" \
    >/dev/null
  # The page PUTs the signed URL from the service's origin: CORS lets it read the answer (the signature
  # is what authorises the write). Photos sent this way are kept a day (the page says so).
  cat >"$stage_root/cors.json" <<'JSON'
[{"origin": ["*"], "method": ["PUT"], "responseHeader": ["Content-Type", "x-goog-content-length-range"], "maxAgeSeconds": 600}]
JSON
  cat >"$stage_root/lifecycle.json" <<JSON
{"rule": [{"action": {"type": "Delete"}, "condition": {"age": 1, "matchesPrefix": ["$prefix"]}}]}
JSON
  gcloud storage buckets update "gs://$INPUT_BUCKET" --cors-file="$stage_root/cors.json" \
    --lifecycle-file="$stage_root/lifecycle.json" >/dev/null
}

warn_public() {
  echo "deploy.sh: ALLOW_UNAUTHENTICATED=true: $1 is PUBLIC (anyone can call it)" >&2
}

deploy_http() {
  local auth=(--no-allow-unauthenticated)
  if [[ "$ALLOW_UNAUTHENTICATED" == true ]]; then
    warn_public faceread-http
    auth=(--allow-unauthenticated)
  fi
  gcloud functions deploy faceread-http "${common_flags[@]}" \
    --entry-point=http_analyze --trigger-http "${auth[@]}"
  cpu_boost faceread-http
  grant_invokers faceread-http
  grant_upload_signing
}

deploy_gcs() {
  # Eventarc delivers Cloud Storage events through Pub/Sub: the project's
  # Cloud Storage service agent must be allowed to publish.
  local gcs_agent
  gcs_agent="$(gcloud storage service-agent --project="$PROJECT")"
  gcloud projects add-iam-policy-binding "$PROJECT" \
    --member="serviceAccount:$gcs_agent" --role=roles/pubsub.publisher --condition=None >/dev/null
  gcloud projects add-iam-policy-binding "$PROJECT" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/eventarc.eventReceiver --condition=None >/dev/null
  local bucket_location
  bucket_location="$(gcloud storage buckets describe "gs://$INPUT_BUCKET" --format='value(location)' | tr '[:upper:]' '[:lower:]')"
  gcloud functions deploy faceread-gcs "${common_flags[@]}" \
    --entry-point=gcs_finalized \
    --trigger-event-filters=type=google.cloud.storage.object.v1.finalized \
    --trigger-event-filters=bucket="$INPUT_BUCKET" \
    --trigger-location="$bucket_location" \
    --trigger-service-account="$SA_EMAIL" \
    --retry \
    --no-allow-unauthenticated
  # --retry is safe because handler/storage_trigger.py acks a bad image (it
  # writes an error result) and raises only on storage errors.
  # The function is private (--no-allow-unauthenticated), so the trigger's identity must be
  # allowed to invoke it: Eventarc, "Roles and permissions for Cloud Run functions targets"
  # (https://cloud.google.com/eventarc/standard/docs/functions/roles-permissions). Granted on
  # this one service, not project-wide; events that arrive before the grant are refused and
  # redelivered (--retry).
  gcloud run services add-iam-policy-binding faceread-gcs --project="$PROJECT" --region="$REGION" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/run.invoker >/dev/null
  cpu_boost faceread-gcs
}

deploy_run() {
  local repo="${REPOSITORY:-faceread}" image tag rendered
  tag="$(date -u +%Y%m%d%H%M%S)"
  image="${REGION}-docker.pkg.dev/${PROJECT}/${repo}/${RUN_SERVICE}:${tag}"
  if ! gcloud artifacts repositories describe "$repo" --project="$PROJECT" --location="$REGION" >/dev/null 2>&1; then
    gcloud artifacts repositories create "$repo" --project="$PROJECT" --location="$REGION" \
      --repository-format=docker
  fi
  gcloud builds submit "$stage" --project="$PROJECT" --region="$REGION" \
    --pack="image=${image},env=GOOGLE_FUNCTION_TARGET=http_analyze"
  rendered="$stage/service.rendered.yaml"
  sed -e "s#IMAGE_URL#${image}#" -e "s#SERVICE_ACCOUNT_EMAIL#${SA_EMAIL}#" \
    -e "s#OUTPUT_BUCKET_NAME#${OUTPUT_BUCKET:-}#" \
    -e "s#\(autoscaling.knative.dev/maxScale: \)\"[0-9]*\"#\1\"${MAX_INSTANCES}\"#" \
    -e "s#\(containerConcurrency: \)[0-9]*#\1${CONCURRENCY}#" \
    "$ROOT/infra/gcp/service.yaml" >"$rendered"
  gcloud run services replace "$rendered" --project="$PROJECT" --region="$REGION"
  # Settings from the caller's environment; service.yaml itself keeps the handler's defaults.
  if ((${#env_vars[@]})); then
    gcloud run services update "$RUN_SERVICE" --project="$PROJECT" --region="$REGION" \
      "--update-env-vars=^@^$(IFS=@; echo "${env_vars[*]}")" >/dev/null
  fi
  if [[ "$ALLOW_UNAUTHENTICATED" == true ]]; then
    warn_public "$RUN_SERVICE"
    gcloud run services add-iam-policy-binding "$RUN_SERVICE" --project="$PROJECT" --region="$REGION" \
      --member=allUsers --role=roles/run.invoker >/dev/null
  fi
  grant_invokers "$RUN_SERVICE"
  grant_upload_signing
}

enable_apis
ensure_service_account
case "$TARGET" in
  buckets) ensure_buckets ;;
  http) stage_source && deploy_http ;;
  gcs) ensure_buckets && stage_source && deploy_gcs ;;
  all) ensure_buckets && stage_source && deploy_http && deploy_gcs ;;
  run) stage_source && deploy_run ;;
esac

if [[ "$TARGET" == all || "$TARGET" == http ]]; then
  url="$(gcloud functions describe faceread-http --gen2 --project="$PROJECT" --region="$REGION" \
    --format='value(serviceConfig.uri)')"
  echo "HTTP endpoint: $url  (POST $url/analyze)"
fi
if [[ "$TARGET" == run ]]; then
  url="$(gcloud run services describe "$RUN_SERVICE" --project="$PROJECT" --region="$REGION" --format='value(status.url)')"
  echo "Cloud Run service $RUN_SERVICE: $url  (POST $url/analyze)"
fi
