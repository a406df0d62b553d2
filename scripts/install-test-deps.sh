#!/usr/bin/env bash
# Installs the real SIP peers the end-to-end tests use, from Debian's packages,
# when they are missing: sipp (sip-tester), baresip (baresip-core), sox, and
# kamailio (the proxy in front of hotline in e2e/kamailio_test.go).
set -euo pipefail
need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
command -v sox >/dev/null 2>&1 || need+=(sox)
# kamailio lives in /usr/sbin, which a non-root PATH may lack.
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing test peers: ${need[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
# The package starts a system-wide Kamailio on port 5060 where systemd runs;
# the tests start their own, and the demo wants 127.0.0.1:5060.
if [[ " ${need[*]} " == *" kamailio "* ]] && [ -d /run/systemd/system ]; then
	$sudo systemctl disable --now kamailio || true
fi
