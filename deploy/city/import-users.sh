#!/usr/bin/env bash
# Load the accounts written by `sharpeyes broker config --out DIR` (DIR/secrets/<user>.password)
# into EMQX's built-in authentication database through its REST API; EMQX hashes them itself.
#   EMQX_API=https://mq-1.city.internal:18083 EMQX_API_KEY=... EMQX_API_SECRET=... \
#       deploy/city/import-users.sh DIR
# NOT RUN on the development machines (no EMQX there). Re-running updates existing users.
set -euo pipefail
dir="${1:?usage: import-users.sh DIR (the --out folder of sharpeyes broker config)}"
api="${EMQX_API:?set EMQX_API}/api/v5/authentication/password_based:built_in_database/users"
auth="${EMQX_API_KEY:?set EMQX_API_KEY}:${EMQX_API_SECRET:?set EMQX_API_SECRET}"
for file in "$dir"/secrets/*.password; do
  user="$(basename "$file" .password)"
  body="$(python3 -c 'import json,sys; print(json.dumps({"user_id": sys.argv[1], "password": open(sys.argv[2]).read().strip()}))' "$user" "$file")"
  if curl -fsS -u "$auth" -H 'content-type: application/json' -d "$body" "$api" > /dev/null 2>&1; then
    echo "added $user"
  else
    curl -fsS -u "$auth" -H 'content-type: application/json' -X PUT \
        -d "$(python3 -c 'import json,sys; print(json.dumps({"password": open(sys.argv[1]).read().strip()}))' "$file")" \
        "$api/$user" > /dev/null
    echo "updated $user"
  fi
done
