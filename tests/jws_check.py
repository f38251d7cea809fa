#!/usr/bin/python3
# jws_check.py: checks hsmkey's JOSE output with implementations nobody
# here wrote: Debian's python3-jwcrypto and python3-cryptography, run by
# Debian's /usr/bin/python3 (not the python3 first on PATH).
#
#   jws_check.py verify JWKS JWS      verifies JWS (a file) with the key of
#                                     its kid in the key set JWKS (a file);
#                                     prints the payload; exit 1 if invalid
#   jws_check.py verify-pem PEM JWS   the same with the public key PEM
#   jws_check.py pem JWKS KID OUT     the JWK KID as SubjectPublicKeyInfo
#                                     PEM into OUT
#   jws_check.py split JWS INPUT SIG  the signing input into INPUT and an
#                                     ES256/ES384 signature (r||s) as DER
#                                     into SIG, for openssl dgst -verify
import base64
import json
import sys

from cryptography.hazmat.primitives.asymmetric.utils import \
    encode_dss_signature
from jwcrypto import jwk, jws


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("ascii").strip()


def key_of(jwks_path, kid):
    keys = jwk.JWKSet.from_json(read(jwks_path))
    k = keys.get_key(kid)
    if k is None:
        sys.exit("no key %s in %s" % (kid, jwks_path))
    return k


def verify(key, token):
    sig = jws.JWS()
    sig.deserialize(token)
    try:
        sig.verify(key)
    except jws.InvalidJWSSignature:
        print("invalid signature", file=sys.stderr)
        sys.exit(1)
    sys.stdout.buffer.write(sig.payload)


def main(argv):
    if argv[1] == "verify":
        token = read(argv[3])
        kid = json.loads(b64url_decode(token.split(".")[0]))["kid"]
        verify(key_of(argv[2], kid), token)
    elif argv[1] == "verify-pem":
        with open(argv[2], "rb") as f:
            key = jwk.JWK.from_pem(f.read())
        verify(key, read(argv[3]))
    elif argv[1] == "pem":
        with open(argv[4], "wb") as f:
            f.write(key_of(argv[2], argv[3]).export_to_pem())
    elif argv[1] == "split":
        h, p, s = read(argv[2]).split(".")
        raw = b64url_decode(s)
        n = len(raw) // 2
        with open(argv[3], "wb") as f:
            f.write((h + "." + p).encode("ascii"))
        with open(argv[4], "wb") as f:
            f.write(encode_dss_signature(int.from_bytes(raw[:n], "big"),
                                         int.from_bytes(raw[n:], "big")))
    else:
        sys.exit("unknown command " + argv[1])


main(sys.argv)
