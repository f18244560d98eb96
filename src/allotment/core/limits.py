"""Every size and range limit of the API in one place, so the schema, the services and the README agree.

Integers are bounded to what their column holds (Integer is 32-bit on PostgreSQL) and to what makes sense for the
field; sizes are bounded so that no request can make the server read, parse or store more than it can afford, and
so that a job's command always fits the kernel's argument space (Linux: 128 KiB per argument, ARG_MAX 2 MiB in all,
environment included).
"""

from __future__ import annotations

# --- request bodies ----------------------------------------------------------------------------------------------
MAX_BODY_BYTES = 1024 * 1024  # any request body; larger bodies get 413 before they are read
MAX_CSV_BODY_BYTES = 4 * 1024 * 1024  # the CSV user import, whose body is a file
MAX_IMPORT_ROWS = 2000  # rows of one CSV import
MAX_BATCH_JOBS = 500  # jobs of one POST /jobs/batch

# --- integers ----------------------------------------------------------------------------------------------------
MAX_INT32 = 2**31 - 1
MAX_ID = MAX_INT32  # primary keys are Integer columns
MAX_OFFSET = MAX_INT32  # paging: no table holds more rows
MAX_PAGE = 10**6  # console pages
MAX_DURATION_S = 366 * 86400  # minimum runtimes, time limits: a year
MAX_PRIORITY = 10**9  # priority class values (Kubernetes' bound for user classes)
MAX_DEVICE_INDEX = 4095  # a device's position on its node
MAX_AMOUNT = 2**53  # a quantity given as a number (bytes, cores, GPUs): exact as a float too
MAX_WEIGHT = 10**6  # fair-share weight
MAX_GPU_HOURS = 10**9  # a quota's time budget

# --- text --------------------------------------------------------------------------------------------------------
MAX_NAME = 64  # usernames and object names (the columns hold 64)
MAX_EMAIL = 254  # an e-mail address, as RFC 5321 bounds it (identity providers send such addresses)
MAX_JOB_NAME = 128
MAX_DESCRIPTION = 255
MAX_FULL_NAME = 64
MAX_SHORT_TEXT = 256  # free-form short fields: references to other objects, quantities as text, roles
MAX_QUANTITY_TEXT = 32
MAX_LIST_ITEMS = 256  # lists of names (pools, members, priority classes, profile orders)
MAX_TREE_ITEMS = 1000  # quotas or profiles in one configuration document

# --- jobs --------------------------------------------------------------------------------------------------------
MAX_COMMAND_ARGS = 1024
MAX_ARG_CHARS = 32 * 1024  # UTF-8 at most 4 bytes a character: 128 KiB, Linux's limit for one argument
MAX_COMMAND_CHARS = 256 * 1024  # the whole command: with the environment well under ARG_MAX (2 MiB)
MAX_LABELS = 64
MAX_LABEL_KEY = 63  # as Kubernetes label names
MAX_LABEL_VALUE = 1024
MAX_LABELS_CHARS = 16 * 1024  # keys and values together

# --- a job's declared environment (core/jobenv.py) ------------------------------------------------------------
MAX_ENV_VARS = 128
MAX_ENV_NAME = 128
MAX_ENV_VALUE = MAX_ARG_CHARS
MAX_ENV_CHARS = 64 * 1024  # names and values together: with the command still well under ARG_MAX
