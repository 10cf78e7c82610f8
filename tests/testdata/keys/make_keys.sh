#!/usr/bin/env bash
# Regenerates the test-only keys in this folder (see README.md). Every run makes new random keys,
# so tests must never hard-code anything derived from them except what README.md lists as fixed.
set -euo pipefail
cd "$(dirname "$0")"
umask 022
OSSL=/usr/bin/openssl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# RSA of assorted sizes, PKCS#8 PEM as OpenSSL 3 writes by default.
for bits in 1023 1024 2047 3072 4096; do
  $OSSL genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$bits" -out "rsa$bits.pem"
done

# One 2048-bit RSA key in every encoding: PKCS#1 (as older opendkim-genkey wrote), PKCS#8, DER,
# base64 DER without armour (an OpenDKIM KeyTable inline key), and its public halves.
$OSSL genrsa -traditional -out rsa2048_pkcs1.pem 2048
$OSSL rsa -in rsa2048_pkcs1.pem -traditional -outform DER -out rsa2048_pkcs1.der
base64 -w0 rsa2048_pkcs1.der > rsa2048_pkcs1.b64
$OSSL pkey -in rsa2048_pkcs1.pem -out rsa2048_pkcs8.pem
# "openssl pkey -outform DER" writes PKCS#1 for RSA keys; "pkcs8 -topk8" writes PKCS#8.
$OSSL pkcs8 -topk8 -nocrypt -in rsa2048_pkcs1.pem -outform DER -out rsa2048_pkcs8.der
base64 -w0 rsa2048_pkcs8.der > rsa2048_pkcs8.b64
$OSSL pkey -in rsa2048_pkcs1.pem -pubout -out rsa2048_pub.pem
$OSSL pkey -in rsa2048_pkcs1.pem -pubout -outform DER -out rsa2048_pub.der
$OSSL rsa -in rsa2048_pkcs1.pem -RSAPublicKey_out -outform DER -out rsa2048_pub_pkcs1.der
$OSSL rsa -in rsa2048_pkcs1.pem -RSAPublicKey_out -out rsa2048_pub_pkcs1.pem

# What opendkim-genkey (Debian's 2.11) writes: <selector>.private and <selector>.txt.
(cd "$tmp" && /usr/sbin/opendkim-genkey -s opendkim -d example.com)
cp "$tmp/opendkim.private" opendkim_genkey.private
cp "$tmp/opendkim.txt" opendkim_genkey.txt

# What dkimpy's dknewkey writes: <name>.key and <name>.dns, for both key types.
(cd "$tmp" && /usr/bin/dknewkey --ktype ed25519 dknewkey_ed25519 2>/dev/null &&
  /usr/bin/dknewkey --ktype rsa dknewkey_rsa 2>/dev/null)
cp "$tmp"/dknewkey_ed25519.key "$tmp"/dknewkey_ed25519.dns "$tmp"/dknewkey_rsa.key \
  "$tmp"/dknewkey_rsa.dns .

# Ed25519 as OpenSSL writes it.
$OSSL genpkey -algorithm ed25519 -out ed25519.pem
$OSSL pkcs8 -topk8 -nocrypt -in ed25519.pem -outform DER -out ed25519.der
$OSSL pkey -in ed25519.pem -pubout -out ed25519_pub.pem

# Keys that must be refused, each for its own reason.
$OSSL pkcs8 -topk8 -v2 aes-256-cbc -passout pass:test -in rsa2048_pkcs1.pem \
  -out rsa_encrypted_pkcs8.pem
$OSSL pkcs8 -topk8 -v2 aes-256-cbc -passout pass:test -in rsa2048_pkcs1.pem -outform DER \
  -out rsa_encrypted_pkcs8.der
$OSSL rsa -in rsa2048_pkcs1.pem -traditional -aes256 -passout pass:test \
  -out rsa_encrypted_pkcs1.pem
$OSSL pkcs8 -topk8 -v2 aes-256-cbc -passout pass:test -in ed25519.pem -out ed25519_encrypted.pem
$OSSL ecparam -name prime256v1 -genkey -out ec_sec1.pem
$OSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec_pkcs8.pem
$OSSL genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:1024 -out "$tmp/dsa.param"
$OSSL genpkey -paramfile "$tmp/dsa.param" -out dsa_pkcs8.pem
# "openssl dsa" writes the traditional "DSA PRIVATE KEY" form.
$OSSL dsa -in dsa_pkcs8.pem -out dsa_traditional.pem 2>/dev/null
$OSSL genpkey -algorithm ed448 -out ed448.pem
$OSSL genpkey -algorithm x25519 -out x25519.pem
$OSSL genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:1024 -out rsa_pss.pem
$OSSL req -x509 -key rsa1024.pem -subj /CN=dkimd-test -days 3650 -out certificate.pem
