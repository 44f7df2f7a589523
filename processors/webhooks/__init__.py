"""``spoc notify``: owner changes from ``spoc.owner-changed`` to webhook endpoints.

``payload`` makes the request (a CloudEvents 1.0 JSON event, signed per Standard
Webhooks), ``delivery`` sends it with retries, ``notifier`` consumes the topic,
keeps per-customer order and commits only what was delivered or dead-lettered.
"""
