"""The ``tcp`` step kind: connect to HOST:PORT (optionally over TLS), send text, read the
reply up to a delimiter, a length or the peer's close, and check it. For partner
endpoints that do not speak HTTP: an EDI gateway, an SMTP relay, a payment switch, a
database port."""
