"""Per-project webhooks: job events sent, signed, to URLs a project's operators choose.

An event becomes a delivery row in the transaction that ends the job (`outbox.py`); the
mirror's leader starts one `WebhookDelivery` workflow per delivery (`dispatch.py`), whose
activity sends it (`sending.py`) and writes each attempt in the delivery's log
(`deliveries.py`). The API's side is `service.py`.
"""
