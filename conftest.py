import os

# The suite runs in test mode whatever the shell says; URLs still come from the
# environment (make test sets them, or starts embedded servers).
os.environ["COREADMIN_ENV"] = "test"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreadmin.settings")
