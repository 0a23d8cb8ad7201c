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
YAML

step "self-test: known-answer sign and verify with every key"
cb hsm selftest --config "$state/broker.yaml"

step "summary"
cat <<TXT
SoftHSM config : $SOFTHSM2_CONF
tokens         : credbroker-dev-root (root key, 1-of-1 share in $state/root-share-dev-officer)
                 $token_label (online keys; PIN in $state/online.pin, mode 0600)
certificates   : $state/root.pem, $state/intermediate.pem, CRL $state/root.crl
transcript     : $state/transcript.jsonl (credbroker ceremony verify ... --root-cert root.pem)
broker config  : $state/broker.yaml
try            : SOFTHSM2_CONF=$SOFTHSM2_CONF node bin/credbroker.js hsm keys --config $state/broker.yaml
The gRPC broker and the demo agent are not built yet (issues 4 and 5); this quickstart will start
them once they exist.
TXT
