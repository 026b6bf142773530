# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this file
# Shared by the lab scripts. The lab is for root on Debian 12: it installs packages, starts
# daemons and changes routes, so every step checks first and does only what is missing.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Everything slow to rebuild lives here, outside the repository, so warm runs are fast.
TP_LAB_CACHE=${TP_LAB_CACHE:-/var/cache/tp-lab}
TP_LAB_RUN=${TP_LAB_RUN:-/run/tp-lab}
TP_LAB_LOG=${TP_LAB_LOG:-/var/log/tp-lab}
DEBIAN_MIRROR=${TP_LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# State that is not a cache (the cluster's certificates, kubeconfigs, data) lives here.
TP_LAB_STATE=${TP_LAB_STATE:-/var/lib/tp-lab}

# The address plan (../shared/DESIGN.md): everything the lab owns is inside 198.18.0.0/15.
LAB_RANGE=198.18.0.0/15
LAB_DEVICE=tp-lab0
LAB_TABLE=198          # routing table holding the catch-all route
LAB_RULE_PRIO=10198    # its policy rules take this priority and the next
DOCKER_BIP=198.19.0.1/24
DOCKER_POOL=198.19.128.0/17
REGISTRY_ADDR=127.0.0.1:5000
POD_CIDR=198.18.0.0/17
NODE_POD_CIDR=198.18.0.0/24
SVC_CIDR=198.18.128.0/17
API_SVC_IP=198.18.128.1
DNS_IP=198.18.128.10
# The node's own address: a lab address on the catch-all device, so nothing the cluster
# advertises is outside the lab range.
NODE_IP=198.18.255.1
NODE_NAME=tp-lab
DOCKER_GW=${DOCKER_BIP%/*}
DOCKER_RANGE=198.19.0.0/16
K8S_RANGE=198.18.0.0/16
# The lab resolver (lab/steps/dns), Docker containers' nameserver. It forwards nothing: it
# answers the lab-only zone with one address and refuses every other name.
LAB_DNS_ADDR=$DOCKER_GW
LAB_DNS_ZONE=tp-lab.test
LAB_DNS_ANSWER=$NODE_IP

# shellcheck source=lab/k8s/versions
source "$LAB_DIR/k8s/versions"
K8S_BIN=$TP_LAB_CACHE/k8s/bin-$K8S_VERSION-etcd$ETCD_VERSION-coredns$COREDNS_VERSION
K8S_SOCK=$TP_LAB_RUN/containerd/containerd.sock
kctl() { "$K8S_BIN/kubectl" --kubeconfig "$TP_LAB_STATE/pki/admin.kubeconfig" "$@"; }

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): the lab installs packages, starts daemons and changes routes"
}

# Starts a daemon in its own session, detached from this shell, with a pidfile and a log.
start_daemon() {
  local name=$1; shift
  mkdir -p "$TP_LAB_RUN" "$TP_LAB_LOG"
  setsid "$@" >>"$TP_LAB_LOG/$name.log" 2>&1 < /dev/null &
  echo $! >"$TP_LAB_RUN/$name.pid"
}

daemon_running() {
  local pidfile=$TP_LAB_RUN/$1.pid
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# Stops a daemon the lab started (and only those: no pidfile, nothing to stop).
stop_daemon() {
  local name=$1 pidfile=$TP_LAB_RUN/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# Waits up to $1 seconds for a command to succeed.
wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# True when COMMAND's output has a line matching PATTERN. Not `cmd | grep -q`: under pipefail,
# grep -q exiting at the first match can kill the writer with SIGPIPE and fail the pipeline.
has_line() {
  local pattern=$1; shift
  "$@" | grep -c -- "$pattern" >/dev/null
}

# Writes stdin to FILE only when it differs, and then restarts DAEMON (if given and running):
# kube-proxy, for one, exits when its configuration file changes under it.
write_conf() {
  local file=$1 daemon=${2:-} tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$file" ] && cmp -s "$tmp" "$file"; then rm -f "$tmp"; return 0; fi
  mkdir -p "$(dirname "$file")"
  mv "$tmp" "$file"; chmod 0644 "$file"
  if [ -n "$daemon" ] && daemon_running "$daemon"; then
    log "$daemon: configuration changed, restarting"
    stop_daemon "$daemon"
  fi
}

engine_answers() { docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }
registry_answers() { curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

# Asks the lab resolver for NAME's A record over UDP, with bash's /dev/udp (there is no dig
# here), and prints the address it answers or its response code; fails when nothing answers
# within 2 s.
lab_dns_query() {
  local name=$1 q label fd reply rcode
  local -a labels bytes
  q='\x74\x70\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'   # id "tp", RD, one question
  IFS=. read -ra labels <<<"$name"
  for label in "${labels[@]}"; do q+=$(printf '\\x%02x' "${#label}")$label; done
  q+='\x00\x00\x01\x00\x01'                                   # root, type A, class IN
  exec {fd}<>"/dev/udp/$LAB_DNS_ADDR/53" || return 1
  printf '%b' "$q" >&"$fd"
  reply=$(timeout 2 dd bs=512 count=1 status=none <&"$fd" 2>/dev/null | od -An -v -tu1) || true
  exec {fd}>&-
  read -d '' -ra bytes <<<"$reply" || true
  [ ${#bytes[@]} -ge 12 ] || { echo "no answer from $LAB_DNS_ADDR:53"; return 1; }
  rcode=$((bytes[3] & 15))
  case $rcode in
    0) if [ $((bytes[6] * 256 + bytes[7])) -gt 0 ]; then
         # One A record for a name with no alias: its address is the last four bytes.
         local n=${#bytes[@]}
         echo "${bytes[n-4]}.${bytes[n-3]}.${bytes[n-2]}.${bytes[n-1]}"
       else echo NODATA; fi ;;
    2) echo SERVFAIL ;; 3) echo NXDOMAIN ;; 5) echo REFUSED ;; *) echo "rcode $rcode" ;;
  esac
}

# True when the lab resolver answers its zone as it should.
lab_dns_answers() { [ "$(lab_dns_query "probe.$LAB_DNS_ZONE")" = "$LAB_DNS_ANSWER" ]; }

# True when the registry holds a manifest for repo:tag.
registry_has() {
  curl -fs -o /dev/null \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY_ADDR/v2/$1/manifests/$2"
}
