"""The call store: schema, connections and the queries behind /api/cdr."""
