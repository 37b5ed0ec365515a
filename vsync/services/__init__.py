"""Domain operations, one function each, shared by the CLI, the API and the admin.

They expect the caller (an edge) to have authorised the principal and entered the right tenant
scope or platform bypass; they validate input, change state, write the audit log, and leave the
commit to the caller so the change and its audit row land together.
"""
