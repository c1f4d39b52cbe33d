"""What the SQL backends of the replay stores, the inboxes and the job trackers share:
one SQLite file's connections and write transactions (:mod:`.sqlite`), PostgreSQL's
connection pools and errors (:mod:`.postgres`)."""
