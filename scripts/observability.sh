#!/usr/bin/env bash
# Creates (or updates) the backfill's log-based metrics and its alert policies (ops/alert-*.yaml) with gcloud.
#   scripts/observability.sh --project <project-id> [--notification-channel <channel-resource-name>] [--dry-run]
# --dry-run prints the gcloud commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."

project="" channel="" dry=""
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project="$2"; shift 2 ;;
    --notification-channel) channel="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    *) echo "usage: $0 --project <project-id> [--notification-channel <name>] [--dry-run]" >&2; exit 2 ;;
  esac
done
[ -n "$project" ] || { echo "error: --project is required" >&2; exit 2; }

run() { if [ -n "$dry" ]; then printf '%q ' "$@"; echo; else "$@"; fi; }

for file in ops/metrics/*.yaml; do
  name=$(basename "$file" .yaml)
  if [ -z "$dry" ] && gcloud logging metrics describe "$name" --project "$project" >/dev/null 2>&1; then
    run gcloud logging metrics update "$name" --config-from-file="$file" --project "$project"
  else
    run gcloud logging metrics create "$name" --config-from-file="$file" --project "$project"
  fi
done

channel_args=()
[ -n "$channel" ] && channel_args=(--notification-channels="$channel")
for policy in ops/alert-*.yaml; do
  title=$(sed -n 's/^displayName: "\(.*\)"$/\1/p' "$policy" | head -n 1)
  existing=""
  if [ -z "$dry" ]; then
    existing=$(gcloud alpha monitoring policies list --project "$project" \
      --filter="displayName=\"$title\"" --format='value(name)' | head -n 1)
  fi
  if [ -n "$existing" ]; then
    run gcloud alpha monitoring policies update "$existing" --policy-from-file="$policy" "${channel_args[@]}" --project "$project"
  else
    run gcloud alpha monitoring policies create --policy-from-file="$policy" "${channel_args[@]}" --project "$project"
  fi
done
