"""Each line records the transaction that stored it, so the live tail can ask for exactly
the lines committed since its last look (apps.logs.selectors.log_lines_since), whatever order
concurrent ingestion transactions commit in. xid8 is 64-bit: it never wraps around."""

from django.db import migrations

# Added with a constant default first, so existing rows are not rewritten (they read as
# transaction 0, older than any cursor, and are never tailed again); new rows then get
# their storing transaction.
FORWARD = """
ALTER TABLE logs_logline ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
ALTER TABLE logs_logline ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
CREATE INDEX logs_logline_txid ON logs_logline (txid);
"""
BACKWARD = """
DROP INDEX logs_logline_txid;
ALTER TABLE logs_logline DROP COLUMN txid;
"""


class Migration(migrations.Migration):
    dependencies = [("logs", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
