-- The customer who opened ticket :t, computed exactly as bench/seed.sql assigns it: a
-- 32-bit mix of t whose two 16-bit halves, multiplied, pick a customer with a skew
-- towards low ids.
\set x (:t * 2654435761) % 4294967296
\set x :x # (:x >> 16)
\set x (:x * 73244475) % 4294967296
\set x :x # (:x >> 16)
\set uid :staff + 1 + ((((:x & 65535) * (:x >> 16)) * :customers) >> 32)
\set sees_all 0
\set sees_internal 0
