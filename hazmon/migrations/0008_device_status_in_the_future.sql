-- Before ingest applied the accepted time window to status messages, a status report dated in
-- the future (a gateway sending microseconds, or a clock in the year 3000) was stored, and since
-- an older report never overwrites a newer one it pinned its device online or offline for good.
-- Such rows keep what the gateway said but are dated now, so that the next report wins again.
UPDATE device_status SET changed_at = now() WHERE changed_at > now() + interval '5 minutes';
