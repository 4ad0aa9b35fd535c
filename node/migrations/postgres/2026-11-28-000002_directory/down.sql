DROP TABLE node_alarms;
DROP TABLE directory_pending;
DROP TABLE directory_log;
