#!/usr/bin/env python3
"""Independent check of the GSP Federation Protocol 1.0 test vectors.

Written from SPEC.md alone, in Python with the `cryptography` package
(X25519, Ed25519, AES-256-GCM, HMAC-SHA256); HPKE (RFC 9180, Base mode,
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) is the few lines of
RFC 9180 it needs. For every vector it opens the envelope in the receiver's
context and compares the outcome with `expect`, reproduces the receipt byte
for byte, and re-seals the `ok` vectors from their message and `ikm_e`.

Run: python3 federation-spec/interop/check_vectors.py   (exit status 0 = all pass)
"""

import hashlib
import hmac
import json
import pathlib
import struct
import sys
import uuid

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DS_MESSAGE = b"GSP-FED-1 message signature\0"
DS_RECEIPT = b"GSP-FED-1 receipt signature\0"
HPKE_INFO = b"GSP-FED-1 envelope hpke\0"
MAX_ENVELOPE = 64 * 1024 * 1024 + 4096
ISO_ALPHA3_SAMPLE = {"FRA", "KEN", "BRA"}  # the vectors only use these; a real client embeds all 249

# ---- RFC 9180, Base mode, suite (0x0020, 0x0001, 0x0002) ----
KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0002
SUITE_KEM = b"KEM" + struct.pack(">H", KEM_ID)
SUITE = b"HPKE" + struct.pack(">HHH", KEM_ID, KDF_ID, AEAD_ID)


def extract(salt, ikm):
    return hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()


def expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def labeled_extract(suite, salt, label, ikm):
    return extract(salt, b"HPKE-v1" + suite + label + ikm)


def labeled_expand(suite, prk, label, info, n):
    return expand(prk, struct.pack(">H", n) + b"HPKE-v1" + suite + label + info, n)


def x25519_pub(sk):
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def derive_keypair(ikm):
    prk = labeled_extract(SUITE_KEM, b"", b"dkp_prk", ikm)
    sk = labeled_expand(SUITE_KEM, prk, b"sk", b"", 32)
    return sk, x25519_pub(sk)


def extract_and_expand(dh, kem_context):
    prk = labeled_extract(SUITE_KEM, b"", b"eae_prk", dh)
    return labeled_expand(SUITE_KEM, prk, b"shared_secret", kem_context, 32)


def key_schedule(shared_secret, info):
    psk_id_hash = labeled_extract(SUITE, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(SUITE, b"", b"info_hash", info)
    ctx = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(SUITE, shared_secret, b"secret", b"")
    return labeled_expand(SUITE, secret, b"key", ctx, 32), labeled_expand(SUITE, secret, b"base_nonce", ctx, 12)


def seal_base(pk_r, info, aad, pt, ikm_e):
    sk_e, enc = derive_keypair(ikm_e)
    dh = X25519PrivateKey.from_private_bytes(sk_e).exchange(X25519PublicKey.from_public_bytes(pk_r))
    key, nonce = key_schedule(extract_and_expand(dh, enc + pk_r), info)
    return enc, AESGCM(key).encrypt(nonce, pt, aad)


def open_base(enc, sk_r, info, aad, ct):
    dh = X25519PrivateKey.from_private_bytes(sk_r).exchange(X25519PublicKey.from_public_bytes(enc))
    key, nonce = key_schedule(extract_and_expand(dh, enc + x25519_pub(sk_r)), info)
    return AESGCM(key).decrypt(nonce, ct, aad)


# ---- SPEC.md §3-§7 ----
class Reject(Exception):
    pass


class Reader:
    def __init__(self, b, code):
        self.b, self.i, self.code = b, 0, code

    def take(self, n):
        if self.i + n > len(self.b):
            raise Reject(self.code)
        v = self.b[self.i : self.i + n]
        self.i += n
        return v

    def u(self, n):
        return int.from_bytes(self.take(n), "big")

    def str8(self):
        return self.take(self.u(1))

    def rest(self):
        v = self.b[self.i :]
        self.i = len(self.b)
        return v


def party(b, code):
    s = b.decode("ascii", "replace")
    if s != "EU" and s not in ISO_ALPHA3_SAMPLE:
        raise Reject(code)
    return s


def routing(r, code):
    mid = r.take(16)
    u = uuid.UUID(bytes=mid)
    h = dict(message_id=mid, frm=party(r.str8(), code), to=party(r.str8(), code), rkid=r.take(8), created=r.u(8), expires=r.u(8))
    if u.version != 7 or u.variant != uuid.RFC_4122 or h["frm"] == h["to"] or h["expires"] <= h["created"] or h["expires"] - h["created"] > 30 * 86400000:
        raise Reject(code)
    return h


def key_id(pub):
    return hashlib.sha256(pub).digest()[:8]


def parse(env):
    """Steps 2 and 3 of SPEC.md section 7.1: framing, version, routing header."""
    r = Reader(env, "malformed_envelope")
    if r.take(4) != b"GSPE":
        raise Reject("malformed_envelope")
    if r.u(2) != 1:
        raise Reject("unknown_version")
    hlen = r.u(2)
    if hlen > 1024:
        raise Reject("malformed_header")
    hr = Reader(r.take(hlen), "malformed_header")
    h = routing(hr, "malformed_header")
    if hr.rest():
        raise Reject("malformed_header")
    aad = env[: r.i]
    enc = r.take(32)
    clen = r.u(4)
    if len(env) - r.i != clen or clen < 16 + 66:
        raise Reject("malformed_envelope")
    ct = r.rest()
    return h, aad, enc, ct


def open_envelope(env, v):
    rc, snd = v["receiver"], v["sender"]
    now, skew = rc["now"], rc["skew_ms"]
    if len(env) > min(rc["max_envelope"], MAX_ENVELOPE):
        raise Reject("too_large")
    h, aad, enc, ct = parse(env)
    if h["to"] != rc["party"]:
        raise Reject("wrong_recipient")
    sk = bytes.fromhex(rc["encryption_private_key"])
    if key_id(x25519_pub(sk)) != h["rkid"]:
        raise Reject("unknown_recipient_key")
    if h["created"] > now + skew:
        raise Reject("not_yet_valid")
    if now > h["expires"] + skew:
        raise Reject("expired")
    try:
        pt = open_base(enc, sk, HPKE_INFO, aad, ct)
    except InvalidTag:
        raise Reject("decrypt_failed")
    p = Reader(pt, "malformed_payload")
    sig = p.take(64)
    slen = p.u(2)
    if slen > 1024:
        raise Reject("malformed_payload")
    signed = p.take(slen)
    body = p.rest()
    s = Reader(signed, "malformed_payload")
    version = s.u(2)
    sh = routing(s, "malformed_payload")
    skid, _case = s.take(8), s.take(16)
    tname, tver, tpart = s.str8(), s.u(2), s.u(1)
    ctype, blen, bsha = s.str8(), s.u(8), s.take(32)
    if s.rest() or not (1 <= len(ctype) <= 127) or any(c < 0x20 or c > 0x7E for c in ctype):
        raise Reject("malformed_payload")
    if (tname == b"") != (tver == 0 and tpart == 0) or (tname and tpart not in (1, 2)):
        raise Reject("malformed_payload")
    keys = [k for k in snd["published_signing_keys"] if key_id(bytes.fromhex(k["public_key"])) == skid]
    if not keys:
        raise Reject("unknown_signing_key")
    k = keys[0]
    if not (k["validity"]["not_before"] - skew <= now <= k["validity"]["not_after"] + skew):
        raise Reject("signing_key_not_valid")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(k["public_key"])).verify(sig, DS_MESSAGE + signed)
    except InvalidSignature:
        raise Reject("bad_signature")
    if blen != len(body) or hashlib.sha256(body).digest() != bsha:
        raise Reject("bad_signature")
    if version != 1 or sh != h:
        raise Reject("header_mismatch")
    for seen in rc["already_seen"]:
        if seen["from"] == h["frm"] and uuid.UUID(seen["message_id"]).bytes == h["message_id"]:
            raise Reject("replayed")
    if tname:
        # A full client validates against templates/<name>/v<version>/<part>.schema.json with a
        # JSON Schema 2020-12 validator; this checker only applies the rules it can state simply.
        if ctype != b"application/json":
            raise Reject("invalid_body")
        doc = json.loads(body)
        if tname == b"free-text" and tpart == 1 and not {"justification", "handling", "priority", "due_date", "category", "subject", "text"} <= doc.keys():
            raise Reject("invalid_body")
    return h


def receipt(env, v, code, mid):
    rc = v["receiver"]
    out = b"GSPR" + struct.pack(">H", 1) + hashlib.sha256(env).digest() + mid
    out += bytes([len(rc["party"])]) + rc["party"].encode() + bytes([len(v["sender"]["party"])]) + v["sender"]["party"].encode()
    out += struct.pack(">Q", rc["now"])
    out += b"\x00\x00" if code == "ok" else b"\x01" + bytes([len(code)]) + code.encode()
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(rc["receipt_signing_seed"]))
    out += key_id(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    return out + key.sign(DS_RECEIPT + out)


def reseal(v):
    m, s = v["message"], v["sender"]
    def p8(b):
        return bytes([len(b)]) + b
    rpk = bytes.fromhex(s["recipient_public_key"])
    body = bytes.fromhex(m["body_hex"])
    rh = uuid.UUID(m["message_id"]).bytes + p8(m["from"].encode()) + p8(m["to"].encode()) + key_id(rpk) + struct.pack(">QQ", m["created"], m["expires"])
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(s["signing_seed"]))
    t = m["template"]
    tmpl = p8(t["name"].encode()) + struct.pack(">HB", t["version"], 1 if t["part"] == "request" else 2) if t else b"\x00\x00\x00\x00"
    signed = struct.pack(">H", 1) + rh + key_id(sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)) + uuid.UUID(m["case_id"]).bytes
    signed += tmpl + p8(m["content_type"].encode()) + struct.pack(">Q", len(body)) + hashlib.sha256(body).digest()
    pt = sk.sign(DS_MESSAGE + signed) + struct.pack(">H", len(signed)) + signed + body
    aad = b"GSPE" + struct.pack(">HH", 1, len(rh)) + rh
    enc, ct = seal_base(rpk, HPKE_INFO, aad, pt, bytes.fromhex(s["ikm_e"]))
    return aad + enc + struct.pack(">I", len(ct)) + ct


def main():
    d = pathlib.Path(__file__).resolve().parent.parent / "vectors"
    index = json.loads((d / "index.json").read_text())
    passed = failed = 0
    for entry in index["vectors"]:
        v = json.loads((d / entry["file"]).read_text())
        env = bytes.fromhex(v["envelope"])
        try:
            h = open_envelope(env, v)
            code, mid = "ok", h["message_id"]
        except Reject as e:
            code = e.args[0]
            try:
                mid = parse(env)[0]["message_id"]
            except Reject:
                mid = b"\0" * 16
        problems = []
        if code != v["expect"]:
            problems.append(f"opened as {code}, expected {v['expect']}")
        if receipt(env, v, code, mid).hex() != v["receipt"]["bytes"]:
            problems.append("receipt differs")
        if v["expect"] == "ok" and reseal(v).hex() != v["envelope"]:
            problems.append("re-sealed envelope differs")
        if problems:
            failed += 1
            print(f"FAIL {v['name']}: {'; '.join(problems)}")
        else:
            passed += 1
            print(f"ok   {v['name']} ({code})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
