#!/usr/bin/env bash
# Makes a private CA for a Waypost fleet and certificates signed by it, with openssl
# (README, "Security": the same commands, explained). Every certificate is good for both
# serverAuth (the instance's HTTPS API) and clientAuth (its pulls from peers with mTLS).
#
#   deploy/fleet-certs.sh ca DIR                  DIR/ca.pem (give to every instance as
#                                                 [fleet] ca and client-ca), DIR/ca.key
#                                                 (keep it off the instances)
#   deploy/fleet-certs.sh cert DIR NAME SAN...    DIR/NAME.pem + DIR/NAME.key, signed by
#                                                 DIR/ca.*; SAN: IP:10.0.1.1, DNS:ns1.example.net
#
# Keys are ECDSA P-256; DAYS (default 825) sets the validity, CA_NAME the CA's common
# name (default "Waypost fleet CA").
set -euo pipefail

DAYS=${DAYS:-825}
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
mkdir -p "$dir"

case $cmd in
  ca)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$DAYS" -subj "/CN=${CA_NAME:-Waypost fleet CA}" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 600 "$dir/ca.key"
    ;;
  cert)
    name=${3:-}; shift 3 2>/dev/null || usage
    [ -n "$name" ] && [ $# -gt 0 ] || usage
    san=$(IFS=,; echo "$*")
    ext=$(mktemp)
    trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$san" > "$ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
      -days "$DAYS" -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
    chmod 600 "$dir/$name.key"
    ;;
  *) usage ;;
esac
