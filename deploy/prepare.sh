#!/usr/bin/env bash
# Write what deploy/compose.yaml mounts: the broker's CA and certificates, its configuration,
# password file and ACL, and one password file per device, under deploy/generated/ (git-ignored).
# Run once on the Docker host (again after adding edges or workers; passwords are kept):
#   sudo SHARPEYES=.venv/bin/sharpeyes deploy/prepare.sh
# Passwords may be supplied as SHARPEYES_MQTT_PASSWORD_<USER> (see `sharpeyes broker config --help`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sharpeyes="${SHARPEYES:-sharpeyes}"
out="$here/generated/broker"
# The broker's public name(s) for edges on other hosts, e.g. BROKER_NAMES="broker.example.org 10.0.0.5".
names=()
for name in ${BROKER_NAMES:-}; do names+=(--server-name "$name"); done

"$sharpeyes" broker ca --out "$out/certs" "${names[@]}"
"$sharpeyes" broker config --site "$here/site.yaml" --out "$out" \
    --mount-root /mosquitto/config --data-dir /mosquitto/data --log-dest stdout

# The sharpeyes containers run as uid 10001 (see Dockerfile) and read their password and the CA
# certificate; Mosquitto reads its files as root before it drops privileges.
if [ "$(id -u)" = 0 ]; then
  chown 10001:10001 "$out/secrets/central.password" "$out/secrets/edge-1.password"
else
  echo "not root: run 'sudo chown 10001:10001 $out/secrets/{central,edge-1}.password' so the containers can read them" >&2
fi
[ -f "$here/.env" ] || {
  umask 077
  random() { head -c "$1" /dev/urandom | base64 | tr -d '/+=\n'; }
  printf 'SHARPEYES_DB_PASSWORD=%s\nSHARPEYES_ADMIN_PASSWORD=%s\nSHARPEYES_JWT_SECRET=%s\nSHARPEYES_OPEN311_KEY=%s\n' \
      "$(random 18)" "$(random 18)" "$(random 48)" "$(random 24)" > "$here/.env"
  echo "wrote $here/.env (database and admin passwords, the token key, the Open311 key; 0600)"
}
echo "ready: docker compose -f $here/compose.yaml up -d"
