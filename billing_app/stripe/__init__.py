"""Everything Stripe, the only package that imports the `stripe` SDK.

`client` calls Stripe (one place, typed params, idempotency keys), `errors` turns its failures
into user messages, `snapshots` are the plain values the rest of the app sees, `parsing` reads
Stripe's answers into them, and `emulator` teaches the embedded localstripe Stripe's behaviour
for test mode (docs/stripe-compat.md).
"""
