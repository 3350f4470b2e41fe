"""Pay-per-chunk over HTTP: the recipe a p2p platform follows (docs/MICROPAYMENTS.md).

The seller's side (`ChunkSeller`) answers a chunk request without payment with `402
Payment Required` and x402's `PAYMENT-REQUIRED` header (our scheme `connext-stream`: the
price per chunk, the asset, who to pay, the node); a request whose `PAYMENT-SIGNATURE`
carries a stream voucher covering one more chunk gets the chunk and a `PAYMENT-RESPONSE`
receipt. The buyer's side (`ChunkBuyer`, over httpx) opens a stream to the seller through
the node the first time it is asked to pay, then pays each chunk with one voucher as it
downloads, and closes the stream when done. The wire types are x402's (version 2).
"""

from .buyer import ChunkBuyer, PaymentRefused
from .seller import SCHEME, ChunkSeller, Paid, PaymentNeeded

__all__ = ["SCHEME", "ChunkBuyer", "ChunkSeller", "Paid", "PaymentNeeded", "PaymentRefused"]
