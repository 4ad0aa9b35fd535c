-- The delivery queue of each peer in sending order: a claim takes the oldest
-- due messages of one peer by walking this index and stops after the batch,
-- instead of sorting every pending message of that peer (which grew with the
-- backlog), and the list of peers with work is found by skipping from one
-- peer to the next.
CREATE INDEX outbox_queue ON outbox (state, peer, message_seq);
