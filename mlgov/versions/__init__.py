"""Model versions: registration, the handle flows pass around, loading, governance, migration and publication."""
