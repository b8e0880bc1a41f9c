-- Timescale-licensed extras, applied only when the server offers them (see hazmon/migrate.py).
-- Compress chunks older than a week, segmented by series so one series' history stays contiguous;
-- late data (a gateway flushing a buffered hour) lands well inside the uncompressed window.
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'series_id',
    timescaledb.compress_orderby = 'time DESC'
);
SELECT add_compression_policy('readings', INTERVAL '7 days');

-- Hourly aggregates for wall displays and long-range charts.
CREATE MATERIALIZED VIEW readings_hourly WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket,
       series_id,
       min(value) AS min_value,
       max(value) AS max_value,
       avg(value) AS avg_value,
       count(*)   AS n
FROM readings
GROUP BY 1, 2
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_hourly',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
