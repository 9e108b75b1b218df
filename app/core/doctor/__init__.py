"""`mosaic doctor`: can this PC run Mosaic as IT set it up? Every check bounded in time, run concurrently,
unattended (no browser, no prompt, nothing of the user's stored or journaled).

`run.py` puts the checks together; `local_checks.py` (Qt libraries, keyring), `files.py` (machine and user
files, access policy, journal folder and schema) and `network_checks.py` (practices, central audit store,
identity provider) hold them; `result.py` is what each reports.
"""
