#!/usr/bin/env bash
# Visgate Deploy on Google Cloud, from a clone to a live Cloud Run service.
#
#   RUNPOD_API_KEY=rpa_... ./deploy.sh --project my-project [--region us-central1]
#   ./deploy.sh --project my-project --dry-run     # print every change, make none
#
# Safe to run again: each resource is looked up first and created only if absent; IAM
# bindings and API enablement are idempotent by nature. Read-only lookups (describe/list)
# also run under --dry-run, so its output is exactly what a real run would change.
#
# Environment (flags win): GCP_PROJECT_ID / CLOUDSDK_CORE_PROJECT, GCP_REGION (us-central1),
# VISGATE_SERVICE (visgate-api), VISGATE_REPO (visgate), FIRESTORE_LOCATION (the region),
# RUNPOD_API_KEY (needed once, to create the operator secret), RUNPOD_REGISTRY_AUTH_ID
# (the Runpod registry credential that can pull the worker image from Artifact Registry),
# RUNPOD_API (graphql, the default, or rest: Runpod REST API v2), VISGATE_IMAGE_TAG (default:
# git commit).
set -euo pipefail

PROJECT="${GCP_PROJECT_ID:-${CLOUDSDK_CORE_PROJECT:-}}"
REGION="${GCP_REGION:-us-central1}"
SERVICE="${VISGATE_SERVICE:-visgate-api}"
REPO="${VISGATE_REPO:-visgate}"
FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-}"
DRY_RUN=0
NO_CACHE=false

RUNTIME_SA_NAME="visgate-api"
BUILD_SA_NAME="visgate-build"
SECRET_ROLE_ID="visgateSecretStore"
SECRET_ACCESS_ROLE_ID="visgateSecretAccess"
WEBHOOK_SECRET="visgate-internal-webhook-secret"
RUNPOD_SECRET="visgate-runpod-api-key"
# What the control plane does with user secrets (secrets/secret_manager.py), nothing more:
# no setIamPolicy, no version destroy, no access to other projects. Two roles, because
# `secrets.create` and `secrets.list` act on the project and cannot be narrowed to names,
# while reading, writing and deleting can: that role is bound with a condition that limits
# it to the secrets the service makes itself (`visgate-dep_*` per deployment, `visgate-key_*`
# per API key), so it cannot read, overwrite or delete any other secret of the project, the
# operator secrets included (those it may only read, through per-secret grants).
SECRET_ROLE_PERMISSIONS="secretmanager.secrets.create,secretmanager.secrets.list"
SECRET_ACCESS_ROLE_PERMISSIONS="secretmanager.secrets.delete,secretmanager.versions.add,secretmanager.versions.access"
# Firestore TTL policies: every document of these collection groups carries `expire_at`, a
# Timestamp (store/firestore_expiry.py), and Firestore deletes it once that time has passed,
# behind the service's own purge. The groups are the unprefixed collection names: the
# service deployed here sets no FIRESTORE_COLLECTION_PREFIX (an install that does enables
# TTL on its own prefixed names).
TTL_FIELD="expire_at"
TTL_COLLECTION_GROUPS=(idempotency_keys rate_limits console_sessions)

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Flags:
  --project ID     Google Cloud project (default: $GCP_PROJECT_ID or gcloud config)
  --region REGION  Cloud Run, Artifact Registry and Cloud Build region (default: us-central1)
  --service NAME   Cloud Run service name (default: visgate-api)
  --no-cache       rebuild images without the layer cache
  --dry-run        print the commands that change anything, run none of them
  -h, --help       this text
EOF
}

die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 1
}

step() {
  printf '\n==> %s\n' "$*"
}

# Print a command the way one would type it (quoted only where the shell needs it).
print_cmd() {
  local arg out="+"
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      out+=" $arg"
    else
      out+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '%s' "$out"
}

# Print a command; run it unless --dry-run.
run() {
  print_cmd "$@"
  printf '\n'
  if ((DRY_RUN)); then
    return 0
  fi
  "$@"
}

# IAM changes right after creating a service account can race its propagation.
run_retry() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if run "$@"; then
      return 0
    fi
    ((attempt < 5)) || return 1
    printf 'retrying in %ss (IAM propagation)\n' "$((attempt * 5))" >&2
    sleep "$((attempt * 5))"
  done
}

# Read-only lookups: they run even under --dry-run.
exists() {
  "$@" >/dev/null 2>&1
}

parse_args() {
  while (($#)); do
    case "$1" in
      --project) PROJECT="${2:?--project needs a value}"; shift 2 ;;
      --project=*) PROJECT="${1#*=}"; shift ;;
      --region) REGION="${2:?--region needs a value}"; shift 2 ;;
      --region=*) REGION="${1#*=}"; shift ;;
      --service) SERVICE="${2:?--service needs a value}"; shift 2 ;;
      --service=*) SERVICE="${1#*=}"; shift ;;
      --no-cache) NO_CACHE=true; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
  done
}

check_gcloud() {
  step "Checking gcloud, credentials and project"
  command -v gcloud >/dev/null || die "gcloud is not installed: https://cloud.google.com/sdk/docs/install"
  command -v python3 >/dev/null || die "python3 is needed to read firestore.indexes.json"
  local account
  account="$(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null | head -n 1)"
  [[ -n "$account" ]] || die "no active gcloud account: run 'gcloud auth login'"
  if [[ -z "$PROJECT" ]]; then
    PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
  fi
  [[ -n "$PROJECT" ]] || die "no project: pass --project or set GCP_PROJECT_ID"
  PROJECT_NUMBER="$(gcloud projects describe "$PROJECT" --format='value(projectNumber)' 2>/dev/null || true)"
  [[ -n "$PROJECT_NUMBER" ]] || die "project $PROJECT not found, or $account cannot see it"
  FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-$REGION}"
  RUNTIME_SA="${RUNTIME_SA_NAME}@${PROJECT}.iam.gserviceaccount.com"
  BUILD_SA="${BUILD_SA_NAME}@${PROJECT}.iam.gserviceaccount.com"
  STAGING_BUCKET="gs://${PROJECT}_cloudbuild"
  printf 'account %s, project %s (%s), region %s\n' "$account" "$PROJECT" "$PROJECT_NUMBER" "$REGION"
  if ((DRY_RUN)); then
    echo "DRY RUN: lookups run, changes are only printed"
  fi
}

# Fail before changing anything if the Runpod key secret is missing and no key is given.
check_runpod_key() {
  if ! exists gcloud secrets describe "$RUNPOD_SECRET" --project="$PROJECT" \
    && [[ -z "${RUNPOD_API_KEY:-}" ]]; then
    die "secret $RUNPOD_SECRET does not exist yet: set RUNPOD_API_KEY (https://www.runpod.io/console/user/settings) and run again"
  fi
}

enable_apis() {
  step "Enabling APIs"
  run gcloud services enable run.googleapis.com firestore.googleapis.com \
    secretmanager.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com \
    iam.googleapis.com cloudresourcemanager.googleapis.com --project="$PROJECT" --quiet
}

ensure_firestore() {
  step "Firestore (native mode), its indexes and TTL policies"
  if exists gcloud firestore databases describe --database='(default)' --project="$PROJECT"; then
    echo "database (default) exists"
  else
    run gcloud firestore databases create --database='(default)' --location="$FIRESTORE_LOCATION" \
      --type=firestore-native --project="$PROJECT" --quiet
  fi
  # `gcloud firestore indexes composite create` takes one index per call
  # (cloud.google.com/sdk/gcloud/reference/firestore/indexes/composite/create); the ones
  # already listed are skipped, so nothing is requested twice.
  local existing line
  local -a index_args
  existing="$(gcloud firestore indexes composite list --database='(default)' \
    --project="$PROJECT" --format=json 2>/dev/null || echo '[]')"
  while IFS= read -r line; do
    [[ -n "$line" ]] || continue
    read -r -a index_args <<<"$line"
    run gcloud firestore indexes composite create --database='(default)' "${index_args[@]}" \
      --project="$PROJECT" --async --quiet
  done < <(missing_indexes "$existing")
  ensure_ttl_policies
}

# `gcloud firestore fields ttls update` enables one field of one collection group
# (cloud.google.com/sdk/gcloud/reference/firestore/fields/ttls/update); a policy already
# active or being created is left alone, so a second run requests nothing.
ensure_ttl_policies() {
  local group listed state
  for group in "${TTL_COLLECTION_GROUPS[@]}"; do
    listed="$(gcloud firestore fields ttls list --collection-group="$group" \
      --database='(default)' --project="$PROJECT" --format=json 2>/dev/null || echo '[]')"
    state="$(ttl_state "$listed" "$group")"
    if [[ "$state" == ACTIVE || "$state" == CREATING ]]; then
      echo "TTL policy on ${group}.${TTL_FIELD} is ${state}"
    else
      run gcloud firestore fields ttls update "$TTL_FIELD" --collection-group="$group" \
        --enable-ttl --database='(default)' --project="$PROJECT" --async --quiet
    fi
  done
}

# The state (ACTIVE, CREATING, NEEDS_REPAIR) of the TTL policy on $TTL_FIELD of group $2,
# from `ttls list --format=json` ($1); nothing when there is none.
ttl_state() {
  LISTED="$1" python3 - "$2" "$TTL_FIELD" <<'PY'
import json, os, sys

group, field = sys.argv[1], sys.argv[2]
try:
    fields = json.loads(os.environ.get("LISTED") or "[]")
except ValueError:
    fields = []
for entry in fields if isinstance(fields, list) else []:
    if entry.get("name", "").endswith(f"/collectionGroups/{group}/fields/{field}"):
        print((entry.get("ttlConfig") or {}).get("state", ""))
        break
PY
}

# firestore.indexes.json (Firebase format) minus the indexes that already exist, as
# gcloud flags, one index per line.
missing_indexes() {
  EXISTING="$1" python3 - firestore.indexes.json <<'PY'
import json, os, sys

def key(group, scope, fields):
    fields = tuple((f["fieldPath"], f.get("order", "").upper()) for f in fields
                   if f["fieldPath"] != "__name__")
    return group, scope.upper(), fields

with open(sys.argv[1], encoding="utf-8") as fh:
    wanted = json.load(fh).get("indexes", [])
have = set()
for index in json.loads(os.environ.get("EXISTING") or "[]"):
    group = index.get("name", "").split("/collectionGroups/")[-1].split("/")[0]
    have.add(key(group, index.get("queryScope", "COLLECTION"), index.get("fields", [])))
for index in wanted:
    scope = index.get("queryScope", "COLLECTION")
    if key(index["collectionGroup"], scope, index["fields"]) in have:
        continue
    args = [f"--collection-group={index['collectionGroup']}",
            f"--query-scope={scope.lower().replace('_', '-')}"]
    for f in index["fields"]:
        args.append(f"--field-config=field-path={f['fieldPath']},order={f['order'].lower()}")
    print(" ".join(args))
PY
}

ensure_registry() {
  step "Artifact Registry repository $REPO"
  if exists gcloud artifacts repositories describe "$REPO" --location="$REGION" --project="$PROJECT"; then
    echo "repository $REPO exists"
  else
    run gcloud artifacts repositories create "$REPO" --repository-format=docker \
      --location="$REGION" --description="Visgate images" --project="$PROJECT" --quiet
  fi
  if exists gcloud storage buckets describe "$STAGING_BUCKET" --project="$PROJECT"; then
    echo "build staging bucket $STAGING_BUCKET exists"
  else
    run gcloud storage buckets create "$STAGING_BUCKET" --location="$REGION" \
      --uniform-bucket-level-access --project="$PROJECT" --quiet
  fi
}

ensure_service_account() {
  local name="$1" email="$2" title="$3"
  if exists gcloud iam service-accounts describe "$email" --project="$PROJECT"; then
    echo "service account $email exists"
  else
    run gcloud iam service-accounts create "$name" --display-name="$title" \
      --project="$PROJECT" --quiet
  fi
}

# Create a project custom role, or bring an existing one's permissions up to date.
ensure_custom_role() {
  local id="$1" title="$2" description="$3" permissions="$4" verb=create
  if exists gcloud iam roles describe "$id" --project="$PROJECT"; then
    verb=update
  fi
  run gcloud iam roles "$verb" "$id" --project="$PROJECT" --title="$title" \
    --description="$description" --permissions="$permissions" --stage=GA --quiet
}

ensure_identities() {
  step "Service accounts and their roles"
  ensure_service_account "$RUNTIME_SA_NAME" "$RUNTIME_SA" "Visgate control plane (Cloud Run)"
  ensure_service_account "$BUILD_SA_NAME" "$BUILD_SA" "Visgate image build and deploy"

  # Creating per-deployment secrets needs secretmanager.secrets.create on the project, which
  # no per-secret grant can give. Instead of roles/secretmanager.admin (which can also
  # rewrite IAM policies and destroy versions) the runtime gets these two custom roles.
  ensure_custom_role "$SECRET_ROLE_ID" "Visgate secret store" \
    "Create and list the per-deployment secrets of Visgate" "$SECRET_ROLE_PERMISSIONS"
  ensure_custom_role "$SECRET_ACCESS_ROLE_ID" "Visgate secret access" \
    "Read, write and delete Visgate's own secrets (bound with a name condition)" \
    "$SECRET_ACCESS_ROLE_PERMISSIONS"

  # Runtime: Firestore documents, and its own secret store roles.
  local role
  for role in roles/datastore.user "projects/${PROJECT}/roles/${SECRET_ROLE_ID}"; do
    run_retry gcloud projects add-iam-policy-binding "$PROJECT" \
      --member="serviceAccount:${RUNTIME_SA}" --role="$role" --condition=None --quiet
  done
  # Secret Manager names resources by project NUMBER in IAM conditions.
  local own="projects/${PROJECT_NUMBER}/secrets/visgate-"
  run_retry gcloud projects add-iam-policy-binding "$PROJECT" \
    --member="serviceAccount:${RUNTIME_SA}" \
    --role="projects/${PROJECT}/roles/${SECRET_ACCESS_ROLE_ID}" \
    --condition="expression=resource.name.startsWith(\"${own}dep_\") || resource.name.startsWith(\"${own}key_\"),title=visgate-own-secrets" \
    --quiet
  # Build: deploy Cloud Run (run.admin: --allow-unauthenticated sets the service's IAM),
  # write logs; push to this one repository; read its staged source; act as the runtime SA.
  for role in roles/run.admin roles/logging.logWriter; do
    run_retry gcloud projects add-iam-policy-binding "$PROJECT" \
      --member="serviceAccount:${BUILD_SA}" --role="$role" --condition=None --quiet
  done
  run_retry gcloud artifacts repositories add-iam-policy-binding "$REPO" --location="$REGION" \
    --member="serviceAccount:${BUILD_SA}" --role=roles/artifactregistry.writer \
    --project="$PROJECT" --quiet
  run_retry gcloud storage buckets add-iam-policy-binding "$STAGING_BUCKET" \
    --member="serviceAccount:${BUILD_SA}" --role=roles/storage.objectViewer \
    --project="$PROJECT" --quiet
  run_retry gcloud iam service-accounts add-iam-policy-binding "$RUNTIME_SA" \
    --member="serviceAccount:${BUILD_SA}" --role=roles/iam.serviceAccountUser \
    --project="$PROJECT" --quiet
}

# Create an operator secret from stdin; the value never reaches argv or the output.
# $1: secret id; $2: how the value is made (printed in its place).
create_secret_from_stdin() {
  local secret="$1" origin="$2"
  local -a cmd=(gcloud secrets create "$secret" --replication-policy=automatic --data-file=-
    --labels=managed_by=visgate --project="$PROJECT" --quiet)
  print_cmd "${cmd[@]}"
  printf '  # value on stdin: %s\n' "$origin"
  if ((DRY_RUN)); then
    cat >/dev/null
    return 0
  fi
  "${cmd[@]}"
}

ensure_operator_secrets() {
  step "Operator secrets"
  local value
  if exists gcloud secrets describe "$WEBHOOK_SECRET" --project="$PROJECT"; then
    echo "secret $WEBHOOK_SECRET exists (rotate: see README.md, 'Rotating keys and secrets')"
  elif ((DRY_RUN)); then
    create_secret_from_stdin "$WEBHOOK_SECRET" "openssl rand -hex 32" </dev/null
  else
    command -v openssl >/dev/null || die "openssl is needed to generate $WEBHOOK_SECRET"
    value="$(openssl rand -hex 32)"
    [[ -n "$value" ]] || die "openssl rand produced nothing"
    printf '%s' "$value" | create_secret_from_stdin "$WEBHOOK_SECRET" "openssl rand -hex 32"
  fi
  if exists gcloud secrets describe "$RUNPOD_SECRET" --project="$PROJECT"; then
    echo "secret $RUNPOD_SECRET exists (rotate: see README.md, 'Rotating keys and secrets')"
  else
    printf '%s' "${RUNPOD_API_KEY:?}" | create_secret_from_stdin "$RUNPOD_SECRET" "the RUNPOD_API_KEY env var"
  fi
  local secret
  for secret in "$WEBHOOK_SECRET" "$RUNPOD_SECRET"; do
    run_retry gcloud secrets add-iam-policy-binding "$secret" \
      --member="serviceAccount:${RUNTIME_SA}" --role=roles/secretmanager.secretAccessor \
      --project="$PROJECT" --quiet
  done
}

image_tag() {
  if [[ -n "${VISGATE_IMAGE_TAG:-}" ]]; then
    printf '%s' "$VISGATE_IMAGE_TAG"
  elif git rev-parse --verify -q HEAD >/dev/null 2>&1; then
    local sha
    sha="$(git rev-parse HEAD)"
    # Uncommitted changes get their own tag, so they never overwrite a commit's image.
    if [[ -n "$(git status --porcelain 2>/dev/null)" ]]; then
      sha="${sha}-dirty-$(date -u +%Y%m%d%H%M%S)"
    fi
    printf '%s' "$sha"
  else
    date -u +manual-%Y%m%d%H%M%S
  fi
}

build_and_deploy() {
  step "Build both images and deploy (Cloud Build, cloudbuild.yaml)"
  local tag subs
  tag="$(image_tag)"
  subs="COMMIT_SHA=${tag},_REGION=${REGION},_REPO=${REPO},_SERVICE=${SERVICE}"
  subs="${subs},_SERVICE_ACCOUNT=${RUNTIME_SA},_NO_CACHE=${NO_CACHE}"
  subs="${subs},_RUNPOD_REGISTRY_AUTH_ID=${RUNPOD_REGISTRY_AUTH_ID:-}"
  subs="${subs},_RUNPOD_API=${RUNPOD_API:-graphql}"
  run gcloud builds submit . --config=cloudbuild.yaml --region="$REGION" \
    --service-account="projects/${PROJECT}/serviceAccounts/${BUILD_SA}" \
    --gcs-source-staging-dir="${STAGING_BUCKET}/source" \
    --substitutions="$subs" --project="$PROJECT" --quiet
}

report() {
  step "Service"
  local url
  url="$(gcloud run services describe "$SERVICE" --region="$REGION" --project="$PROJECT" \
    --format='value(status.url)' 2>/dev/null || true)"
  if [[ -z "$url" ]]; then
    ((DRY_RUN)) || die "service $SERVICE has no URL: see the build log above"
    url="https://${SERVICE}-${PROJECT_NUMBER}.${REGION}.run.app"
  fi
  echo "URL: $url"
  run curl -fsS --retry 10 --retry-delay 3 --retry-all-errors --max-time 10 "${url}/health"
  printf '\n'
  echo "Next: issue an API key (README.md, 'First API key')."
}

main() {
  parse_args "$@"
  cd "$(dirname "${BASH_SOURCE[0]}")"
  [[ -f cloudbuild.yaml && -f firestore.indexes.json ]] || die "run from a Visgate clone"
  check_gcloud
  check_runpod_key
  enable_apis
  ensure_firestore
  ensure_registry
  ensure_identities
  ensure_operator_secrets
  build_and_deploy
  report
}

main "$@"
