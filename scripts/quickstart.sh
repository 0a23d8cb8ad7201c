#!/usr/bin/env bash
# npm run quickstart: from a fresh clone to a working development HSM in one command.
#  1. checks Node.js and installs SoftHSM 2 + OpenSC when missing (as root via apt-get;
#     otherwise says exactly what to run), then the npm dependencies;
#  2. gives the development SoftHSM its own softhsm2.conf and token folder in .credbroker/dev/;
#  3. runs the development key ceremony (pki/ceremonies/dev.yaml): root token and key, online
#     token with the intermediate, token-signing and audit keys, certificates, CRL and a
#     signed transcript; PINs and the root share go to 0600 files that are never printed;
#  4. self-tests every online key (known-answer sign + verify) and prints a summary.
# Re-running reuses what exists; nothing is ever overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state="$root/.credbroker/dev"
token_label="credbroker-dev-online"
port="${CREDBROKER_PORT:-8443}"
metrics_port="${CREDBROKER_METRICS_PORT:-9464}"
operator_id="spiffe://anonymizer.local/ops/dev-operator"
step() { printf '\n==> %s\n' "$*"; }

step "checking prerequisites"
if ! command -v node >/dev/null 2>&1; then
  echo "Node.js >= 20 is required: https://nodejs.org or 'apt-get install -y nodejs npm'" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node.js >= 20 is required, found $(node --version)" >&2
  exit 1
fi
missing=()
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || missing+=(opensc)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing: ${missing[*]}. Install them, then run npm run quickstart again:" >&2
    echo "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y softhsm2 opensc" >&2
    echo "  Fedora:        sudo dnf install -y softhsm opensc" >&2
    echo "  macOS:         brew install softhsm opensc" >&2
    exit 1
  fi
fi
echo "node $(node --version), $(softhsm2-util --version | head -1 | sed 's/^/softhsm2 /')"
if [ ! -d node_modules/pkcs11js/build ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

step "development SoftHSM in .credbroker/dev/"
mkdir -p "$state/tokens"
chmod 700 "$root/.credbroker" "$state" "$state/tokens"
export SOFTHSM2_CONF="$state/softhsm2.conf"
if [ ! -f "$SOFTHSM2_CONF" ]; then
  cat >"$SOFTHSM2_CONF" <<CONF
# SoftHSM 2 configuration for credbroker development (made by npm run quickstart)
directories.tokendir = $state/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi
cb() { node "$root/bin/credbroker.js" "$@"; }

step "development key ceremony (pki/ceremonies/dev.yaml, 1-of-1)"
if [ -f "$state/transcript.jsonl" ]; then
  echo "the dev ceremony already ran; checking its transcript"
  cb ceremony verify "$state/transcript.jsonl" --root-cert "$state/root.pem"
else
  if cb hsm tokens --json | node -e 'const t=JSON.parse(require("fs").readFileSync(0,"utf8"));process.exit(t.some(x=>x.initialized&&x.label.startsWith("credbroker-dev-"))?0:1)'; then
    echo "development tokens exist in $state/tokens but no ceremony transcript (an older quickstart?)." >&2
    echo "Start over with: rm -rf $state && npm run quickstart" >&2
    exit 1
  fi
  cb ceremony run pki/ceremonies/dev.yaml --out "$state"
fi
cat >"$state/broker.yaml" <<YAML
# credbroker development configuration (made by npm run quickstart). Secrets are named by
# source, never written here: the PIN file is 0600 and never printed.
hsm:
  token: $token_label
  pin: { file: ./online.pin }
  sessions: 4
ca:
  intermediateKey: dev-intermediate-2026
  intermediateCertificate: ./intermediate.pem
  roots: [./root.pem]
server:
  listen: 127.0.0.1:$port
store: { path: ./broker.db }
policy: $root/pki/policy.yaml
audit: { key: dev-audit-2026 }
tokens: { key: dev-token-signing-2026 }
metrics: { listen: 127.0.0.1:$metrics_port }
YAML

step "self-test: known-answer sign and verify with every key"
cb hsm selftest --config "$state/broker.yaml"

step "broker on 127.0.0.1:$port"
if [ -f "$state/broker.pid" ] && kill -0 "$(cat "$state/broker.pid")" 2>/dev/null; then
  echo "stopping the broker started earlier (pid $(cat "$state/broker.pid"))"
  kill "$(cat "$state/broker.pid")" && sleep 1
fi
if [ ! -f "$state/operator/cert.pem" ]; then
  # The first operator: a one-time join token minted from the broker's own store, on this host.
  rm -f "$state/operator.token"
  cb bootstrap-operator --config "$state/broker.yaml" --spiffe-id "$operator_id" --out "$state/operator.token"
fi
nohup node "$root/bin/credbroker.js" serve --config "$state/broker.yaml" >"$state/broker.log" 2>&1 &
echo $! >"$state/broker.pid"
for _ in $(seq 1 50); do
  grep -q "listening on" "$state/broker.log" 2>/dev/null && break
  kill -0 "$(cat "$state/broker.pid")" 2>/dev/null || { echo "the broker did not start:" >&2; cat "$state/broker.log" >&2; exit 1; }
  sleep 0.2
done
grep "listening on" "$state/broker.log"
if [ ! -f "$state/operator/cert.pem" ]; then
  mkdir -p "$state/operator" && chmod 700 "$state/operator"
  cb enroll --broker "127.0.0.1:$port" --trust-bundle "$state/root.pem" --join-token-file "$state/operator.token" --out "$state/operator"
fi

step "demo agent: spiffe://anonymizer.local/pipeline/detect keeps its certificate renewed"
demo="$state/demo-agent"
if [ -f "$state/agent.pid" ] && kill -0 "$(cat "$state/agent.pid")" 2>/dev/null; then
  echo "stopping the demo agent started earlier (pid $(cat "$state/agent.pid"))"
  kill "$(cat "$state/agent.pid")" && sleep 0.5
fi
mkdir -p "$demo" && chmod 700 "$demo"
if [ ! -f "$demo/credentials/cert.pem" ]; then
  # An operator makes the service's single-use join token; it goes to a 0600 file, never a terminal.
  rm -f "$demo/join-token"
  cb join-token --broker "127.0.0.1:$port" --server-name localhost --trust-bundle "$state/root.pem" \
    --cert "$state/operator/cert.pem" --key "$state/operator/key.pem" \
    --spiffe-id spiffe://anonymizer.local/pipeline/detect --out "$demo/join-token"
fi
cat >"$demo/agent.yaml" <<YAML
# The demo agent (made by npm run quickstart): enrolls once with the join token (then deletes
# it), writes key (0600), certificate, chain and trust bundle to ./credentials, renews at two
# thirds of the lifetime and at once when a forced rotation asks (Rotation/Watch).
broker: { address: 127.0.0.1:$port, serverName: localhost, trustBundle: $state/root.pem }
joinToken: { file: ./join-token }
ttl: 10m          # short on purpose: a renewal every 6 to 7 minutes shows in the log
output: { dir: ./credentials }
YAML
nohup node "$root/bin/credbroker.js" agent --config "$demo/agent.yaml" >"$state/agent.log" 2>&1 &
echo $! >"$state/agent.pid"
for _ in $(seq 1 50); do
  [ -s "$demo/credentials/cert.pem" ] && break
  kill -0 "$(cat "$state/agent.pid")" 2>/dev/null || { echo "the demo agent stopped:" >&2; cat "$state/agent.log" >&2; exit 1; }
  sleep 0.2
done
[ -s "$demo/credentials/cert.pem" ] || { echo "the demo agent wrote no certificate within 10 s:" >&2; cat "$state/agent.log" >&2; exit 1; }
openssl x509 -in "$demo/credentials/cert.pem" -noout -ext subjectAltName -enddate

step "summary"
grpcurl_bin=$(command -v grpcurl || true)
[ -z "$grpcurl_bin" ] && [ -x "$root/../shared/bin/grpcurl" ] && grpcurl_bin="$root/../shared/bin/grpcurl"
g="${grpcurl_bin:-grpcurl} -cacert $state/root.pem -cert $state/operator/cert.pem -key $state/operator/key.pem"
a="127.0.0.1:$port"
cat <<TXT
SoftHSM config : $SOFTHSM2_CONF
tokens         : credbroker-dev-root (root key, 1-of-1 share in $state/root-share-dev-officer)
                 $token_label (online keys; PIN in $state/online.pin, mode 0600)
certificates   : $state/root.pem, $state/intermediate.pem, CRL $state/root.crl
transcript     : $state/transcript.jsonl (credbroker ceremony verify ... --root-cert root.pem)
broker         : 127.0.0.1:$port, pid $(cat "$state/broker.pid"), log $state/broker.log, config $state/broker.yaml
operator       : $operator_id (key and certificate in $state/operator/, key 0600)
metrics        : curl -s 127.0.0.1:$metrics_port/metrics | grep credbroker_
audit          : node bin/credbroker.js audit verify --db $state/broker.db --audit-key $state/audit-key.pem

Try (grpcurl with the operator certificate):
  $g $a list
  $g $a describe credbroker.v1.Administration.CreateJoinToken
  $g -d '{"spiffe_id":"spiffe://anonymizer.local/pipeline/import"}' $a credbroker.v1.Administration/CreateJoinToken
  $g -d '{"page_size":5}' $a credbroker.v1.Certificates/ListCertificates
  $g -d '{"page_size":5}' $a credbroker.v1.Administration/QueryAudit
The README's grpcurl walkthrough continues from here (enroll with an openssl CSR, revoke, CRL).
demo agent     : pid $(cat "$state/agent.pid"), log $state/agent.log, files in $demo/credentials (renews every ~6 min)
  force its rotation and watch it renew within a second:
  $g -d '{"selector":"spiffe://anonymizer.local/pipeline/detect"}' $a credbroker.v1.Rotation/ForceRotate
Stop: kill \$(cat $state/agent.pid) \$(cat $state/broker.pid)
TXT
