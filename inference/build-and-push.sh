#!/usr/bin/env bash
# Build the worker image and push it to a registry; the printed name goes into
# RUNPOD_TEMPLATE_IMAGE.
#
#   inference/build-and-push.sh [--no-cache] [--no-push] IMAGE[:TAG]
#   IMAGE=docker.io/me/visgate-worker:1.0 inference/build-and-push.sh
#
# --no-cache   rebuild every layer from freshly pulled base images
# --no-push    build only
# Other environment: PARTCRAFTER_COMMIT (build arg), PLATFORM (default linux/amd64: Runpod's).
set -euo pipefail

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${IMAGE:-}"
no_cache=()
push=1

while (($# > 0)); do
  case "$1" in
    --no-cache) no_cache=(--no-cache --pull) ;;
    --no-push) push=0 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    *) image="$1" ;;
  esac
  shift
done

if [[ -z "${image}" ]]; then
  echo "error: give the image name (argument or IMAGE=...), e.g. docker.io/me/visgate-worker:1.0" >&2
  exit 2
fi
if [[ "${image##*/}" != *:* ]]; then  # no tag: use the commit
  image="${image}:$(git -C "${here}" rev-parse --short HEAD 2>/dev/null || date +%Y%m%d%H%M)"
fi
command -v docker >/dev/null || { echo "error: docker is not installed" >&2; exit 1; }

build_args=(--platform "${PLATFORM:-linux/amd64}" --tag "${image}")
if [[ -n "${PARTCRAFTER_COMMIT:-}" ]]; then
  build_args+=(--build-arg "PARTCRAFTER_COMMIT=${PARTCRAFTER_COMMIT}")
fi

echo "building ${image}"
# ${a[@]+"${a[@]}"}: an empty array under `set -u` is an "unbound variable" on bash < 4.4.
docker build ${no_cache[@]+"${no_cache[@]}"} "${build_args[@]}" "${here}"

if ((push)); then
  echo "pushing ${image}"
  docker push "${image}"
fi
echo "${image}"
