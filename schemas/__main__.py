"""``python -m schemas`` regenerates the JSON Schema files."""

from schemas.jsonschema import write_all

for path in write_all():
    print(f"wrote {path}")
