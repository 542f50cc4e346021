"""MediExchange: the exchange service between the Medihost portal and the clinics' MIS.

Layers, each depending only on the ones before it:
records (typed values) <- protocol (XML in and out, no AWS) <- sync (what an import changes, pure)
<- store (DynamoDB) <- service (use cases) <- web (HTTP adapters) <- functions, CLI, local server.
"""
