-- bench/seed.sql cancels every ticket with t % 10 = 7, and a canceled ticket takes no
-- message: its neighbour does.
\set t CASE WHEN :t % 10 = 7 THEN :t - 1 ELSE :t END
