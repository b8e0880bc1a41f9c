-- Dead letters of redelivered messages: after a crash between commit and acknowledgement the
-- broker delivers a refused payload again (MQTT DUP flag); ingest then stores it only if the
-- same topic and bytes are not stored already. This index makes that check cheap. A gateway
-- that sends the same bad payload twice (no DUP flag) still gets two dead letters.
CREATE INDEX dead_letters_redelivery_idx ON dead_letters (topic, md5(payload));
