#!/usr/bin/env bash
# Installs the peer routers for bench:peers into .peers/ (ignored): a Python venv with pinned
# PyPI releases, llm-d's endpoint picker built from the Go module proxy, and the inference
# extension's endpoint picker (the code llm-d's grew from) built from bench/peers/gie-epp. A peer
# that cannot be installed is skipped with one line; .peers/status.tsv records, per peer, ok or the
# failure.
set -u
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.peers"
mkdir -p "$dest/bin" "$dest/logs"
status="$dest/status.tsv"
: > "$status"

SGLANG_ROUTER_VERSION=0.3.2
SMG_VERSION=1.13.0
VLLM_ROUTER_VERSION=0.1.17
INFERENCE_PERF_VERSION=0.7.0
# transformers (which inference-perf brings) accepts tokenizers >= 0.22.0, <= 0.23.0 (no 0.23.0 release is served)
TOKENIZERS_VERSION=0.22.2
LLMD_ROUTER_VERSION="${LLMD_ROUTER_VERSION:-v0.10.0}"

# Reasons are recorded without the registries' addresses.
record() {
  local reason; reason="$(printf '%s' "$3" | sed -E 's#https?://[^ ]+#(registry)#g')"
  printf '%s\t%s\t%s\n' "$1" "$2" "$reason" >> "$status"; echo "peers:install: $1: $2${reason:+ ($reason)}"
}

# inference-perf needs Python >= 3.12; the routers take any Python 3.
is_new_enough() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2> /dev/null; }
python="${PYTHON:-}"
if [ -z "$python" ]; then
  pyenv_root="$(pyenv root 2> /dev/null || true)"
  for candidate in python3.12 python3.13 ${pyenv_root:+"$pyenv_root"/versions/3.1[2-9]*/bin/python3} python3; do
    if command -v "$candidate" > /dev/null && is_new_enough "$candidate"; then python="$candidate"; break; fi
  done
fi
[ -n "$python" ] || { python=python3; echo "peers:install: no Python >= 3.12 found; inference-perf will not install"; }
if [ -x "$dest/venv/bin/python" ] && ! is_new_enough "$dest/venv/bin/python" && is_new_enough "$python"; then rm -rf "$dest/venv"; fi
if [ ! -x "$dest/venv/bin/python" ]; then
  nice -n 10 "$python" -m venv "$dest/venv" || record venv failed "$python -m venv"
fi
pip() { nice -n 10 "$dest/venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }

pip_peer() { # name, pip spec, executable that must exist afterwards
  local name="$1" spec="$2" exe="$3" log="$dest/logs/$1.log"
  if pip install "$spec" > "$log" 2>&1 && [ -x "$dest/venv/bin/$exe" ]; then
    record "$name" ok "$spec"
  else
    record "$name" failed "pip install $spec: $(grep -iE 'error|no matching' "$log" | tail -n 1 | tr '\t' ' ')"
  fi
}

if [ -x "$dest/venv/bin/python" ]; then
  pip_peer sglang-router "sglang-router==$SGLANG_ROUTER_VERSION" sglang-router
  pip_peer vllm-router "vllm-router==$VLLM_ROUTER_VERSION" vllm-router
  pip_peer smg "smg==$SMG_VERSION" smg
  pip_peer inference-perf "inference-perf==$INFERENCE_PERF_VERSION" inference-perf
  pip_peer tokenizers "tokenizers==$TOKENIZERS_VERSION" python
fi

# llm-d's endpoint picker: go install from the module proxy, pinned. The proxy may refuse the module
# (403 "not available"); then the newest version it lists is tried, and failing that the peer is
# skipped with each command that was tried and the first error line it gave.
llmd_module=github.com/llm-d/llm-d-router
if command -v go > /dev/null; then
  log="$dest/logs/llm-d-epp.log"
  : > "$log"
  tried=""
  attempt() { # description, command...: runs it in .peers against the module proxy; on failure notes its error
    local what="$1" out; shift
    if out="$(cd "$dest" && GOFLAGS=-mod=mod GOBIN="$dest/bin" nice -n 10 "$@" 2>&1)"; then
      printf '$ %s\n%s\n' "$what" "$out" >> "$log"; return 0
    fi
    printf '$ %s\n%s\n' "$what" "$out" >> "$log"
    tried="$tried${tried:+; }$what: $(printf '%s\n' "$out" | grep -iE '403|not available|error|cannot|unknown' | head -n 2 | sed -E 's/^go: //; s/[[:space:]]+/ /g' | tr '\n' ' ' | sed 's/ $//')"
    return 1
  }
  listed="$( (cd "$dest" && go list -m -versions "$llmd_module" 2> /dev/null) | tr ' ' '\n' | grep '^v' | sort -rV | head -n 1)"
  [ -n "$listed" ] || attempt "go list -m -versions $llmd_module" go list -m -versions "$llmd_module" || true
  built=""
  for v in $LLMD_ROUTER_VERSION $listed; do
    if attempt "go install $llmd_module/cmd/epp@$v" go install "$llmd_module/cmd/epp@$v" && [ -x "$dest/bin/epp" ]; then
      built="$v"; break
    fi
  done
  if [ -n "$built" ]; then
    record llm-d-epp ok "$llmd_module/cmd/epp@$built"
  else
    record llm-d-epp failed "$tried"
  fi
else
  record llm-d-epp failed "no go command"
fi

# The inference extension's endpoint picker: bench/peers/gie-epp runs cmd/epp's stock runner from
# sigs.k8s.io/gateway-api-inference-extension at the version its go.mod pins (go.sum pins the hashes).
gie_dir="$root/bench/peers/gie-epp"
gie_module=sigs.k8s.io/gateway-api-inference-extension
gie_version="$(awk -v m="$gie_module" '$1 == m || ($1 == "require" && $2 == m) { print $NF }' "$gie_dir/go.mod" | head -n 1)"
if command -v go > /dev/null; then
  log="$dest/logs/gie-epp.log"
  if out="$(cd "$gie_dir" && nice -n 10 go build -o "$dest/bin/gie-epp" . 2>&1)"; then
    printf '%s\n' "$out" > "$log"
    record gie-epp ok "$gie_module@$gie_version cmd/epp runner (bench/peers/gie-epp)"
  else
    printf '%s\n' "$out" > "$log"
    rm -f "$dest/bin/gie-epp"
    record gie-epp failed "go build bench/peers/gie-epp ($gie_module@$gie_version): $(printf '%s\n' "$out" | grep -iE '403|not available|error|cannot|undefined' | head -n 1 | sed -E 's/^go: //; s/[[:space:]]+/ /g')"
  fi
else
  record gie-epp failed "no go command"
fi
echo "peers:install: status in $status"
