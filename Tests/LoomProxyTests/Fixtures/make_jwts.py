#!/usr/bin/env python3
"""Signs JSON Web Tokens the way an identity provider would, with Python's `cryptography`
(not loom's code): writes a JWKS of fresh RSA, P-256 and Ed25519 public keys to argv[1] and
prints a JSON object of named tokens (valid ones, and ones loom must refuse).

HS256 tokens use the secret given as argv[2]."""
import base64, hashlib, hmac, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def uint(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
ed_key = ed25519.Ed25519PrivateKey.generate()
rsa_public = rsa_key.public_key().public_numbers()
ec_public = ec_key.public_key().public_numbers()
ed_public = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
jwks = {"keys": [
    {"kty": "RSA", "kid": "rsa1", "use": "sig", "n": uint(rsa_public.n), "e": uint(rsa_public.e)},
    {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": b64(ec_public.x.to_bytes(32, "big")), "y": b64(ec_public.y.to_bytes(32, "big"))},
    {"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": b64(ed_public)},
]}
with open(sys.argv[1], "w") as out:
    json.dump(jwks, out)

def sign(alg: str, signing_input: bytes) -> bytes:
    if alg == "RS256":
        return rsa_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        return rsa_key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    if alg == "ES256":
        r, s = decode_dss_signature(ec_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "EdDSA":
        return ed_key.sign(signing_input)
    if alg == "HS256":
        return hmac.new(sys.argv[2].encode(), signing_input, hashlib.sha256).digest()
    raise ValueError(alg)

def token(alg: str, kid, claims: dict, signer=None) -> str:
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
    return signing_input.decode() + "." + b64(sign(signer or alg, signing_input))

now = int(time.time())
good = {"iss": "https://issuer.example", "aud": ["loom-api", "other"], "sub": "user-42", "role": "admin", "n": 7, "exp": now + 3600}
tokens = {
    "rs256": token("RS256", "rsa1", good),
    "ps256": token("PS256", "rsa1", good),
    "es256": token("ES256", "ec1", good),
    "eddsa": token("EdDSA", "ed1", good),
    "hs256": token("HS256", None, good),
    "expired": token("ES256", "ec1", dict(good, exp=now - 120)),
    "within_leeway": token("ES256", "ec1", dict(good, exp=now - 5)),
    "early": token("ES256", "ec1", dict(good, nbf=now + 3600)),
    "wrong_audience": token("ES256", "ec1", dict(good, aud="someone-else")),
    "wrong_issuer": token("ES256", "ec1", dict(good, iss="https://evil.example")),
    "unknown_kid": token("ES256", "nope", good),
    "wrong_key": token("ES256", "rsa1", good),
    "alg_none": b64(json.dumps({"alg": "none"}).encode()) + "." + b64(json.dumps(good).encode()) + ".",
}
# The signature of one token over another's claims: a tampered payload.
header, payload, signature = tokens["rs256"].split(".")
tokens["tampered"] = header + "." + b64(json.dumps(dict(good, sub="admin")).encode()) + "." + signature
print(json.dumps(tokens))
