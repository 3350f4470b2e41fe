"""Random inputs for the transfer definitions, valid and invalid, for mirror-vs-contract tests.

Each generator draws a balance, an encoded initial state and an encoded resolver around
one definition's rules (right and wrong preimages, signers, expiries, fees, voucher amounts,
malformed signatures) and, now and then, garbles the bytes (trailing or missing bytes,
dirty padding, out-of-range offsets and lengths) so that decoding is compared too.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode

from connext.protocol.encoding import checksum, receipt_digest, voucher_digest
from connext.protocol.signing import Signer
from connext.protocol.transfers import TransferContext
from connext.protocol.transfers.base import evidence_of
from connext.protocol.types import ETH, TransferBalance

from .helpers import high_s_twin

UINT256_MAX = 2**256 - 1


@dataclass(frozen=True)
class Case:
    balance: TransferBalance
    state: bytes
    resolver: bytes

    def balance_tuple(self) -> tuple[list[int], list[str]]:
        return list(self.balance.amount), list(self.balance.to)


ORACLE = Signer(b"\x0b" * 32)
PAYER = Signer(b"\x0c" * 32)


@dataclass
class Registered:
    """Evidence to register in the secret registry, and when each was: hashlock preimages,
    oracle receipts (payment id, data, signature) and stream vouchers (stream id, amount,
    signature), the latter two registered as keccak(digest ++ signature)."""

    hashlock: list[bytes]
    receipts: list[tuple[bytes, bytes, bytes]]
    vouchers: list[tuple[bytes, int, bytes]]
    receipt_evidence: dict[tuple[bytes, bytes, bytes], bytes]
    voucher_evidence: dict[tuple[bytes, int, bytes], bytes]
    at: dict[bytes, int]
    """Registered preimage (or evidence) -> block time of its registration."""

    @classmethod
    def draw(cls, rng: random.Random, deployment: Any) -> Registered:
        signed, stream = deployment.definitions["Signed"], deployment.definitions["Stream"]
        chain = deployment.chain_id
        receipts, vouchers = [], []
        receipt_evidence, voucher_evidence = {}, {}
        for _ in range(3):
            payment_id, data = rng.randbytes(32), rng.randbytes(32)
            digest = receipt_digest(chain, signed, payment_id, data)
            signature = ORACLE.sign(digest)
            receipts.append((payment_id, data, signature))
            receipt_evidence[payment_id, data, signature] = evidence_of(digest, signature)
            stream_id, amount = rng.randbytes(32), rng.randint(1, 10**20)
            digest = voucher_digest(chain, stream, stream_id, amount)
            signature = PAYER.sign(digest)
            vouchers.append((stream_id, amount, signature))
            voucher_evidence[stream_id, amount, signature] = evidence_of(digest, signature)
        return cls([rng.randbytes(32) for _ in range(4)], receipts, vouchers,
                   receipt_evidence, voucher_evidence, {})

    def preimages(self) -> list[bytes]:
        return [*self.hashlock, *self.receipt_evidence.values(),
                *self.voucher_evidence.values()]


class CaseMaker:
    """Draws cases for one definition; `now` and the definition address come from `ctx`."""

    def __init__(self, rng: random.Random, ctx: TransferContext,
                 registered: Registered | None = None) -> None:
        """`registered`: evidence registered in the secret registry, with the block time
        of each registration (ctx.registered holds the same by sha256)."""
        self.rng = rng
        self.ctx = ctx
        self.keys = [Signer.random() for _ in range(3)] + [ORACLE, PAYER]
        self.registered = registered

    # -- building blocks -----------------------------------------------------------------

    def address(self) -> str:
        return checksum(self.rng.randbytes(20))

    def amount(self) -> int:
        r = self.rng
        return r.choice([0, 1, r.randint(1, 10**24), r.getrandbits(128), r.getrandbits(255),
                         r.getrandbits(256)])

    def balance(self) -> TransferBalance:
        # full uint256 range: a resolve whose sum overflows must revert on both sides
        responder = 0 if self.rng.random() < 0.8 else self.amount()
        return TransferBalance(amount=(self.amount(), responder), to=(self.address(),
                                                                      self.address()))

    def signature(self, signer: Signer, digest: bytes) -> bytes:
        """A signature of `digest`: mostly `signer`'s, sometimes broken in one way."""
        good = signer.sign(digest)
        r = self.rng
        if r.random() < 0.5:
            return good
        return r.choice([
            r.choice(self.keys).sign(digest),        # maybe someone else
            self.keys[0].sign(r.randbytes(32)),      # another message
            b"",                                     # cancel
            high_s_twin(good),
            good[:64] + bytes((r.choice([0, 1, 29]),)),
            good[:64],
            good + b"\x00",
            bytes(32) + good[32:],                   # r = 0
            r.randbytes(65),
        ])

    def garble(self, data: bytes) -> bytes:
        """Usually `data` unchanged; sometimes bytes no honest encoder would produce."""
        r = self.rng
        if r.random() < 0.75:
            return data
        words = max(len(data) // 32, 1)
        kind = r.randrange(9)
        if kind == 0:
            return data + r.randbytes(r.choice([1, 31, 32, 64]))
        if kind == 1:
            return data + bytes(32)
        if kind == 2:
            return data[: -r.choice([1, 31, 32])] if len(data) > 32 else b""
        if kind == 3:
            return r.randbytes(r.randint(0, 300))
        if kind == 4:  # dirty the high bytes of one word (an address word must reject it)
            w = r.randrange(words)
            return data[: 32 * w] + r.randbytes(12) + data[32 * w + 12:]
        if kind == 5:  # flip one bit anywhere
            if not data:
                return data
            i = r.randrange(len(data))
            return data[:i] + bytes((data[i] ^ (1 << r.randrange(8)),)) + data[i + 1:]
        # kinds 6-8 rewrite a whole word: offsets and lengths out of range, or shifted
        w = r.randrange(words)
        value = r.choice([
            2**255, UINT256_MAX - 31, len(data), len(data) - 32, 66, 96, 0x20, 0x60, 0x80,
            int.from_bytes(data[32 * w: 32 * w + 32] or bytes(32), "big") + 32,
        ]) % 2**256
        return data[: 32 * w] + value.to_bytes(32, "big") + data[32 * w + 32:]

    def expiry(self) -> int:
        now, r = self.ctx.now, self.rng
        return r.choice([0, now - 1, now, now + 1, now + r.randint(1, 10**6), r.randint(0, now),
                         UINT256_MAX])

    # -- per definition --------------------------------------------------------------------

    def around(self, at: int) -> int:
        """An expiry just before, at or after a registration (which decides whether the
        evidence still pays after the expiry), or any other."""
        return self.rng.choice([at - 1, at, at + 1, 0, self.expiry()])

    def hashlock(self) -> Case:
        r = self.rng
        expiry = self.expiry()
        if self.registered and r.random() < 0.4:
            preimage = r.choice(self.registered.hashlock)
            expiry = self.around(self.registered.at[preimage])
        else:
            preimage = r.randbytes(32)
        lock = r.choice([hashlib.sha256(preimage).digest()] * 3 + [bytes(32), r.randbytes(32)])
        revealed = r.choice([preimage, preimage, bytes(32), r.randbytes(32), lock])
        return Case(
            self.balance(),
            self.garble(encode(["bytes32", "uint256"], [lock, expiry])),
            self.garble(encode(["bytes32"], [revealed])),
        )

    def signed(self) -> Case:
        r = self.rng
        expiry = self.expiry()
        if self.registered and r.random() < 0.4:  # a receipt registered on chain
            payment_id, data, signature = r.choice(self.registered.receipts)
            evidence = self.registered.receipt_evidence[payment_id, data, signature]
            expiry = self.around(self.registered.at[evidence])
            oracle = ORACLE
        else:
            oracle = r.choice(self.keys)
            payment_id, data = r.randbytes(32), r.randbytes(32)
            digest = receipt_digest(self.ctx.chain_id, self.ctx.definition, payment_id, data)
            signature = self.signature(oracle, digest)
        signer = r.choice([oracle.address] * 4 + [ETH, self.address()])
        return Case(
            self.balance(),
            self.garble(encode(["address", "bytes32", "uint256"], [signer, payment_id, expiry])),
            self.garble(encode(["bytes32", "bytes"], [data, signature])),
        )

    def stream(self) -> Case:
        r = self.rng
        balance = self.balance()
        expiry = self.expiry()
        if self.registered and r.random() < 0.4:  # a voucher registered on chain
            stream_id, voucher, signature = r.choice(self.registered.vouchers)
            evidence = self.registered.voucher_evidence[stream_id, voucher, signature]
            expiry = self.around(self.registered.at[evidence])
            payer = PAYER
        else:
            payer = r.choice(self.keys)
            stream_id = r.randbytes(32)
            budget = balance.amount[0]
            voucher = r.choice([0, budget // 2, budget, budget + 1, r.getrandbits(255),
                                UINT256_MAX - balance.amount[1]])
            digest = voucher_digest(self.ctx.chain_id, self.ctx.definition, stream_id, voucher)
            signature = self.signature(payer, digest)
        signer = r.choice([payer.address] * 4 + [ETH, self.address()])
        return Case(
            balance,
            self.garble(encode(["address", "bytes32", "uint256"], [signer, stream_id, expiry])),
            self.garble(encode(["uint256", "bytes"], [voucher, signature])),
        )

    def withdraw(self) -> Case:
        r = self.rng
        initiator, responder = r.sample(self.keys, 2)
        commitment = r.randbytes(32)
        balance = self.balance()
        fee = r.choice([0, balance.amount[0] // 3, balance.amount[0], balance.amount[0] + 1,
                        UINT256_MAX])
        state = encode(
            ["bytes", "address", "address", "bytes32", "uint256", "uint256"],
            [self.signature(initiator, commitment),
             r.choice([initiator.address] * 4 + [ETH]),
             r.choice([responder.address] * 4 + [self.address()]),
             commitment, r.getrandbits(64), fee],
        )
        resolver = encode(["bytes"], [self.signature(responder, commitment)])
        return Case(balance, self.garble(state), self.garble(resolver))


def maker_for(name: str, maker: CaseMaker) -> Callable[[], Case]:
    return {
        "Hashlock": maker.hashlock,
        "Signed": maker.signed,
        "Stream": maker.stream,
        "Withdraw": maker.withdraw,
    }[name]
