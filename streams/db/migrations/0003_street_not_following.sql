-- Leitstand history, schema v3 (docs/database.md): whether the street showed a driven plan.
-- Never edit an applied migration: add 0004_... instead.

-- signals.plans `not_following` (stop 46): on a drive record, true while the field controller
-- reported another stage than the plan's (signal_not_following raised). NULL for every row
-- written before this migration: not known then, and `leitstand explain` says so.
ALTER TABLE signal_decisions ADD COLUMN not_following boolean NULL;
