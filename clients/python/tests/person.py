"""A person answering one action's escalation from the command line, for the other clients'
tests (the TypeScript client's): `python person.py ACTION_ID ROLE DECISION [FIELDS_JSON]`,
with HANDOFF_BOOTSTRAP naming the broker."""

from __future__ import annotations

import json
import sys

from conftest import Person, env

if __name__ == "__main__":
    action_id, role, decision = sys.argv[1:4]
    fields = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    Person(env("HANDOFF_BOOTSTRAP")).answer(action_id, role, decision, **fields)
