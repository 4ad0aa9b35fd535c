DROP TABLE audit;
DROP TABLE outbox;
DROP TABLE messages;
DROP TABLE cases;
DROP TABLE sessions;
DROP TABLE users;
