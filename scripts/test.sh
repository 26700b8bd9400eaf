#!/usr/bin/env bash
# The project's test command: starts the database servers the tests need (installing
# them on a fresh machine), then runs every test. Under CI=true a test whose server
# is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh up
eval "$(scripts/services.sh env)"
cargo test --all-targets "$@"
