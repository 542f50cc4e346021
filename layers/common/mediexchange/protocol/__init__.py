"""The MediExchange XML: reading requests into typed records and writing answers. No AWS here."""
