#!/usr/bin/env python3
"""Recomputes the worked handshake of PROTOCOL.md's appendix A from the
formulas of section 5, with Python's hashlib and hmac, and checks every
value the appendix prints. Exits non-zero on any difference."""

import hashlib
import hmac
import pathlib
import re
import sys

SPEC = pathlib.Path(__file__).resolve().parents[2] / "PROTOCOL.md"


def block(text: str, title: str) -> bytes:
    """The hex block printed after a line starting with `title`."""
    m = re.search(re.escape(title) + r"[^\n]*\n\n```\n([0-9a-f\n]+)```", text)
    if not m:
        sys.exit(f"appendix has no block for {title!r}")
    return bytes.fromhex(m.group(1).replace("\n", ""))


def main() -> None:
    text = SPEC.read_text(encoding="utf-8")
    appendix = text[text.index("## Appendix A") :]
    hello = block(appendix, "HELLO (agent to hub)")
    challenge = block(appendix, "CHALLENGE (hub to agent)")
    printed_t = block(appendix, "The transcript")
    proof_frame = block(appendix, "PROOF (agent to hub)")
    confirm_frame = block(appendix, "CONFIRM (hub to agent)")

    secret = bytes(range(32))
    binding = bytes([0x42]) * 32
    hub_random = bytes([0x22]) * 32
    failures = []

    def check(name, got, want):
        if got != want:
            failures.append(f"{name}: computed {got.hex()}, appendix {want.hex()}")

    # HELLO: header, magic, one version (1), limits, nonce of 0x11, id.
    check("HELLO magic", hello[8:16], b"OPTUNNEL")
    check("HELLO nonce", hello[27:59], bytes([0x11]) * 32)
    check("HELLO id", hello[60:], b"plant-7")
    # CHALLENGE: hub nonce and session id derived from the hub's random bytes.
    nonce = hashlib.sha256(b"outpost-tunnel v1 hub nonce" + hub_random).digest()
    session = hashlib.sha256(b"outpost-tunnel v1 session id" + hub_random).digest()[:16]
    check("hub nonce", challenge[18:50], nonce)
    check("session id", challenge[50:66], session)

    t = hashlib.sha256(hello + challenge).digest()
    check("T", t, printed_t)
    b = bytes([len(binding)]) + binding
    proof = hmac.new(secret, b"outpost-tunnel v1 agent proof" + b + t, hashlib.sha256).digest()
    check("PROOF header", proof_frame[:8], bytes.fromhex("0000200300000000"))
    check("PROOF", proof, proof_frame[8:])
    confirm = hmac.new(secret, b"outpost-tunnel v1 hub confirm" + b + t + proof, hashlib.sha256).digest()
    check("CONFIRM header", confirm_frame[:8], bytes.fromhex("0000200400000000"))
    check("CONFIRM", confirm, confirm_frame[8:])

    if failures:
        sys.exit("\n".join(failures))
    print("appendix A: T, PROOF, CONFIRM, hub nonce and session id recomputed independently; all match")


if __name__ == "__main__":
    main()
